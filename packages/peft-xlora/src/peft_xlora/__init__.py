"""peft-xlora: X-LoRA (a token-wise mixture of LoRA experts chosen by a small classifier) for peft-core.

Builds on peft-lora: the experts are LoRA adapters. Importing the package registers the method `xlora`
(peft_type `XLORA`); adapters saved by Hugging Face PEFT with `peft_type: "XLORA"` load directly.
"""

from peft_core import register_peft_method

from .classifier import XLoraClassifier, layer_scalings
from .config import XLoraConfig
from .layer import XLoraEmbedding, XLoraLinear
from .model import XLoraModel

__all__ = ["XLoraClassifier", "XLoraConfig", "XLoraEmbedding", "XLoraLinear", "XLoraModel", "layer_scalings"]

register_peft_method("xlora", XLoraModel, plugin_api=">=1,<2")
