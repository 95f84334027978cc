"""peft-peanut: PEANuT (a weight-aware update computed by a small network from the frozen weight)
for peft-core.

Importing the package registers the method `peanut` (peft_type `PEANUT`); adapters saved by Hugging
Face PEFT with `peft_type: "PEANUT"` load directly.
"""

from peft_core import register_peft_method

from .config import PeanutConfig
from .layer import PeanutLinear
from .model import PeanutModel

__all__ = ["PeanutConfig", "PeanutLinear", "PeanutModel"]

register_peft_method("peanut", PeanutModel, plugin_api=">=1,<2")
