"""peft-delora: DeLoRA (decoupled low-rank adaptation) for peft-core.

Importing the package registers the method `delora` (peft_type `DELORA`); adapters saved by
Hugging Face PEFT with `peft_type: "DELORA"` load directly.
"""

from peft_core import register_peft_method

from .config import DeloraConfig
from .layer import DeloraLinear
from .model import DeloraModel

__all__ = ["DeloraConfig", "DeloraLinear", "DeloraModel"]

register_peft_method("delora", DeloraModel, plugin_api=">=1,<2")
