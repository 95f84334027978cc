"""peft-beft: BEFT (bias-efficient fine-tuning) for peft-core.

Importing the package registers the method `beft` (peft_type `BEFT`); adapters saved by Hugging Face
PEFT with `peft_type: "BEFT"` load directly.
"""

from peft_core import register_peft_method

from .config import BeftConfig
from .defaults import TARGET_MODULES
from .layer import BeftLinear
from .model import BeftModel

__all__ = ["TARGET_MODULES", "BeftConfig", "BeftLinear", "BeftModel"]

register_peft_method("beft", BeftModel, plugin_api=">=1,<2")
