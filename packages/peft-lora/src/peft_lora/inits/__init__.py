"""Data-driven LoRA initialisations: LoftQ, EVA, CorDA and LoRA-GA (Hugging Face PEFT 0.21.2's API).

    from peft_lora import LoraConfig
    from peft_lora.inits import CordaConfig, preprocess_corda

    config = LoraConfig(init_lora_weights="corda", corda_config=CordaConfig(corda_method="ipm"), ...)
    preprocess_corda(model, config, run_model=lambda: [model(**batch) for batch in calibration])
    model = get_peft_model(model, config)

Only torch is needed, except LoftQ (bitsandbytes: `pip install 'peft-lora[bnb]'`). The functions are
imported on first use, so `import peft_lora` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .configs import CordaConfig, EvaConfig, LoftQConfig, LoraGAConfig

if TYPE_CHECKING:
    from .corda import preprocess_corda
    from .eva import get_eva_state_dict, initialize_lora_eva_weights
    from .loftq import replace_lora_weights_loftq
    from .lora_ga import preprocess_loraga

_LAZY = {
    "preprocess_corda": ".corda",
    "get_eva_state_dict": ".eva",
    "initialize_lora_eva_weights": ".eva",
    "replace_lora_weights_loftq": ".loftq",
    "preprocess_loraga": ".lora_ga",
}

__all__ = ["CordaConfig", "EvaConfig", "LoftQConfig", "LoraGAConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peft_lora.inits' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
