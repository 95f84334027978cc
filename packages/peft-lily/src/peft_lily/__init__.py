"""peft-lily: Lily (low-rank interconnected adaptation across layers) for peft-core.

Importing the package registers the method `lily` (peft_type `LILY`); adapters saved by Hugging
Face PEFT with `peft_type: "LILY"` load directly.
"""

from peft_core import register_peft_method

from .config import LilyConfig
from .layer import LilyLinear
from .model import LilyModel

__all__ = ["LilyConfig", "LilyLinear", "LilyModel"]

register_peft_method("lily", LilyModel, plugin_api=">=1,<2")
