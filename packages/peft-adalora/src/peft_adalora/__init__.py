"""peft-adalora: AdaLoRA (adaptive budget allocation for LoRA) for peft-core, file-compatible with HF PEFT.

Importing the package registers the "adalora" method (peft_type "ADALORA"). AdaLoRA builds on
peft-lora and saves LoRA's parameter names (`lora_A`, `lora_B`, plus `lora_E`), so it shares the
`lora_` prefix with the "lora" method on purpose.

    from peft_core import get_peft_model
    from peft_adalora import AdaLoraConfig

    config = AdaLoraConfig(init_r=12, target_r=4, tinit=100, tfinal=200, total_step=1000,
                           target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base_model, config)
    ...  # in the training loop, after loss.backward() and optimizer.step():
    model.base_model.update_and_allocate(step)
"""

from __future__ import annotations

from peft_core import register_peft_method

from .allocator import RankAllocator
from .config import AdaLoraConfig
from .layers import AdaLoraLayer, SVDConv2d, SVDLinear
from .model import AdaLoraModel
from .targets import DEFAULT_TARGET_MODULES

__version__ = "0.1.0"

register_peft_method("adalora", AdaLoraModel, plugin_api=">=1,<2")

__all__ = [
    "AdaLoraConfig",
    "AdaLoraLayer",
    "AdaLoraModel",
    "DEFAULT_TARGET_MODULES",
    "RankAllocator",
    "SVDConv2d",
    "SVDLinear",
    "__version__",
]
