"""peft-glora: GLoRA (generalised low-rank adaptation of weights and biases) for peft-core.

Importing the package registers the method `glora` (peft_type `GLORA`); adapters saved by Hugging
Face PEFT with `peft_type: "GLORA"` load directly.
"""

from peft_core import register_peft_method

from .config import GloraConfig
from .layer import GloraLinear
from .model import GloraModel

__all__ = ["GloraConfig", "GloraLinear", "GloraModel"]

register_peft_method("glora", GloraModel, plugin_api=">=1,<2")
