"""peft-c3a: C3A (circular convolution adaptation) for peft-core.

Importing the package registers the method `c3a` (peft_type `C3A`); adapters saved by Hugging
Face PEFT with `peft_type: "C3A"` load directly.
"""

from peft_core import register_peft_method

from .circulant import block_circulant_matrix, block_circulant_product
from .config import C3AConfig
from .defaults import TARGET_MODULES
from .layer import C3ALinear
from .model import C3AModel

__all__ = [
    "TARGET_MODULES",
    "C3AConfig",
    "C3ALinear",
    "C3AModel",
    "block_circulant_matrix",
    "block_circulant_product",
]

register_peft_method("c3a", C3AModel, plugin_api=">=1,<2")
