"""peft-poly: Polytropon / Multi-Head Routing (per-task mixes of LoRA skills) for peft-core.

Importing the package registers the method `poly` (peft_type `POLY`); adapters saved by Hugging Face
PEFT with `peft_type: "POLY"` load directly. Every forward call takes `task_ids`
(optional for a single-task adapter).
"""

from peft_core import register_peft_method

from .config import PolyConfig
from .layer import PolyLinear, mixed_factors
from .model import PolyModel
from .routing import PolyRouter, TaskIdsError

__all__ = ["PolyConfig", "PolyLinear", "PolyModel", "PolyRouter", "TaskIdsError", "mixed_factors"]

register_peft_method("poly", PolyModel, plugin_api=">=1,<2")
