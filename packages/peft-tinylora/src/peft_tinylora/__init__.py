"""peft-tinylora: TinyLoRA (a few trained numbers per adapter) for peft-core.

Importing the package registers the method `tinylora` (peft_type `TINYLORA`, prefix `tinylora_`,
which contains LoRA's `lora_`: keys are selected structurally, never by prefix); adapters saved by
Hugging Face PEFT with `peft_type: "TINYLORA"` load directly.
"""

from peft_core import register_peft_method

from .config import TinyLoraConfig
from .layer import TinyLoraEmbedding, TinyLoraLayer, TinyLoraLinear, projection, truncated_svd
from .model import TinyLoraModel

__all__ = [
    "TinyLoraConfig",
    "TinyLoraEmbedding",
    "TinyLoraLayer",
    "TinyLoraLinear",
    "TinyLoraModel",
    "projection",
    "truncated_svd",
]

register_peft_method("tinylora", TinyLoraModel, plugin_api=">=1,<2")
