"""peft-pvera: PVeRA (probabilistic vector-based random matrix adaptation) for peft-core.

Importing the package registers the method `pvera` (peft_type `PVERA`, parameter prefix
`pvera_lambda_`, which contains VeRA's `vera_lambda_`: keys are selected structurally, never by
prefix); adapters saved by Hugging Face PEFT with `peft_type: "PVERA"` load directly.
"""

from peft_core import register_peft_method

from .config import PveraConfig
from .defaults import TARGET_MODULES
from .layer import PveraLinear
from .model import PveraModel
from .projections import draw_projections

__all__ = ["TARGET_MODULES", "PveraConfig", "PveraLinear", "PveraModel", "draw_projections"]

register_peft_method("pvera", PveraModel, plugin_api=">=1,<2")
