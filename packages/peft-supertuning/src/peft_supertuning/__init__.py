"""peft-supertuning: Super-Tuning (sparse fine-tuning of the largest weight entries, optionally with a
LoRA: "Supra") for peft-core.

Importing the package registers the method `supertuning` (peft_type `SUPERTUNING`); adapters saved
by Hugging Face PEFT with `peft_type: "SUPERTUNING"` load directly.
"""

from peft_core import register_peft_method

from .config import SupertuningConfig
from .layer import SupertuningLinear
from .model import SupertuningModel

__all__ = ["SupertuningConfig", "SupertuningLinear", "SupertuningModel"]

register_peft_method("supertuning", SupertuningModel, plugin_api=">=1,<2")
