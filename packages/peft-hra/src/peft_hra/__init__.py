"""peft-hra: Householder reflection adaptation (HRA) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `hra` (peft_type `"HRA"`).
"""

from peft_core import register_peft_method

from .config import HRAConfig
from .layer import HRAConv2d, HRALayer, HRALinear
from .model import HRAModel
from .reflections import gram_schmidt_reflection, householder_product, hra_matrix

register_peft_method("hra", HRAModel, plugin_api=">=1,<2")

__all__ = [
    "HRAConfig", "HRAConv2d", "HRALayer", "HRALinear", "HRAModel", "gram_schmidt_reflection", "householder_product",
    "hra_matrix",
]
