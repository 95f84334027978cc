"""peft-frod: FRoD (full-rank efficient fine-tuning with rotational degrees) for peft-core.

Importing the package registers the method `frod` (peft_type `FROD`); adapters saved by Hugging
Face PEFT with `peft_type: "FROD"` load directly.
"""

from peft_core import register_peft_method

from .bases import block_index_of, category_of, shared_basis, sparse_positions
from .config import FrodConfig
from .defaults import TARGET_MODULES
from .layer import FrodLinear
from .model import FrodModel

__all__ = [
    "TARGET_MODULES",
    "FrodConfig",
    "FrodLinear",
    "FrodModel",
    "block_index_of",
    "category_of",
    "shared_basis",
    "sparse_positions",
]

register_peft_method("frod", FrodModel, plugin_api=">=1,<2")
