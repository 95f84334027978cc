"""peft-deft: DEFT (decompositional efficient fine-tuning: replace a learned subspace of each weight)
for peft-core.

Importing the package registers the method `deft` (peft_type `DEFT`); adapters saved by Hugging Face
PEFT with `peft_type: "DEFT"` load directly.
"""

from peft_core import register_peft_method

from .config import DeftConfig
from .layer import DeftLinear
from .model import DeftModel

__all__ = ["DeftConfig", "DeftLinear", "DeftModel"]

register_peft_method("deft", DeftModel, plugin_api=">=1,<2")
