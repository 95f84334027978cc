"""peft-randlora: RandLoRA (full-rank adaptation from shared random bases) for peft-core.

Importing the package registers the method `randlora` (peft_type `RANDLORA`); adapters saved by
Hugging Face PEFT with `peft_type: "RANDLORA"` load directly.
"""

from peft_core import register_peft_method

from .bases import make_bases
from .config import RandLoraConfig
from .layer import RandLoraLinear
from .model import RandLoraModel

__all__ = ["RandLoraConfig", "RandLoraLinear", "RandLoraModel", "make_bases"]

register_peft_method("randlora", RandLoraModel, plugin_api=">=1,<2")
