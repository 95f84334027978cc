"""peft-shira: SHiRA (sparse high-rank adapters) for peft-core.

Importing the package registers the method `shira` (peft_type `SHIRA`); adapters saved by Hugging
Face PEFT with `peft_type: "SHIRA"` load directly (their sparse indices are in the file).
"""

from peft_core import register_peft_method

from .config import ShiraConfig
from .defaults import TARGET_MODULES
from .layer import ShiraLinear
from .masks import indices_from_mask, random_mask
from .model import ShiraModel

__all__ = ["TARGET_MODULES", "ShiraConfig", "ShiraLinear", "ShiraModel", "indices_from_mask", "random_mask"]

register_peft_method("shira", ShiraModel, plugin_api=">=1,<2")
