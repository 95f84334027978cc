"""`peft.utils.constants`: file names, and the per-model default target modules of the installed methods.

`TRANSFORMERS_MODELS_TO_<METHOD>_TARGET_MODULES_MAPPING` is the method's registered
`default_target_modules` (model_type -> module names), looked up when first used.
"""

from __future__ import annotations

import re
from typing import Any

from peft_core.serialization import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME

TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
EMBEDDING_LAYER_NAMES = ["embed_tokens", "lm_head"]
_DEFAULT_TARGETS = re.compile(r"TRANSFORMERS_MODELS_TO_([A-Z0-9_]+)_TARGET_MODULES_MAPPING")


def __getattr__(name: str) -> Any:
    match = _DEFAULT_TARGETS.fullmatch(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from peft_core import get_peft_method

    try:
        method = get_peft_method(match.group(1))
    except KeyError as exc:
        raise AttributeError(f"{name}: {exc}") from None
    return {k: list(v) if not isinstance(v, str) else v for k, v in method.default_target_modules.items()}


__all__ = ["CONFIG_NAME", "EMBEDDING_LAYER_NAMES", "SAFETENSORS_WEIGHTS_NAME", "TOKENIZER_CONFIG_NAME", "WEIGHTS_NAME"]
