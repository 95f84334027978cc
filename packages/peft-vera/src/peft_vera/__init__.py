"""peft-vera: VeRA (vector-based random matrix adaptation) for peft-core.

Importing the package registers the `vera` method; adapters saved by Hugging Face PEFT with
`peft_type: "VERA"` load directly (`peft_core.PeftModel.from_pretrained`).
"""

from peft_core import register_peft_method

from .config import VeraConfig
from .defaults import TARGET_MODULES
from .layer import VeraLinear
from .model import VeraModel
from .projections import make_projections

register_peft_method("vera", VeraModel, plugin_api=">=1,<2")

__all__ = [
    "TARGET_MODULES",
    "VeraConfig",
    "VeraLinear",
    "VeraModel",
    "make_projections",
]
