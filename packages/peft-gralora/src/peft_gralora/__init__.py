"""peft-gralora: GraLoRA (granular low-rank adaptation) for peft-core.

Importing the package registers the method `gralora` (peft_type `GRALORA`); adapters saved by
Hugging Face PEFT with `peft_type: "GRALORA"` load directly.
"""

from peft_core import register_peft_method

from .config import GraloraConfig
from .layer import GraloraLinear, grid_product
from .model import GraloraModel

__all__ = ["GraloraConfig", "GraloraLinear", "GraloraModel", "grid_product"]

register_peft_method("gralora", GraloraModel, plugin_api=">=1,<2")
