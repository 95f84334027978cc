"""Prefix tuning for peft-core: learned per-layer key/value prefixes (Hugging Face PEFT's
`PREFIX_TUNING`, file-compatible)."""

from peft_core import register_peft_method

from .config import PrefixTuningConfig
from .encoder import PrefixEncoder
from .model import PrefixTuningModel

register_peft_method("prefix_tuning", PrefixTuningModel, plugin_api=">=1,<2")

__all__ = ["PrefixEncoder", "PrefixTuningConfig", "PrefixTuningModel"]
