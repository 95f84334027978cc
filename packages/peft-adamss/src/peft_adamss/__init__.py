"""peft-adamss: AdaMSS (adaptive multi-subspaces) for peft-core.

Importing the package registers the method `adamss` (peft_type `ADAMSS`); adapters saved by Hugging
Face PEFT with `peft_type: "ADAMSS"` load directly (their subspaces are recomputed from the base
weight, with scikit-learn's k-means, as HF does).
"""

from peft_core import register_peft_method

from .config import AdamssConfig
from .layer import AdamssLinear
from .model import TARGET_MODULES, AdamssModel

__all__ = ["TARGET_MODULES", "AdamssConfig", "AdamssLinear", "AdamssModel"]

register_peft_method("adamss", AdamssModel, plugin_api=">=1,<2")
