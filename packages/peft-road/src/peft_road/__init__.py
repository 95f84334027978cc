"""peft-road: RoAd (2-D rotation adaptation) for peft-core.

Importing the package registers the method `road` (peft_type `ROAD`); adapters saved by Hugging
Face PEFT with `peft_type: "ROAD"` load directly.
"""

from peft_core import register_peft_method

from .config import RoadConfig
from .layer import RoadLinear
from .model import RoadModel
from .rotation import rotate, rotation_matrix

__all__ = ["RoadConfig", "RoadLinear", "RoadModel", "rotate", "rotation_matrix"]

register_peft_method("road", RoadModel, plugin_api=">=1,<2")
