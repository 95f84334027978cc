"""peft-gralora: GraLoRA (granular low-rank adaptation) for peft-core.

Importing the package registers the method `gralora` (peft_type `GRALORA`); adapters saved by
Hugging Face PEFT with `peft_type: "GRALORA"` load directly.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import GraloraConfig
from .layer import GraloraLinear, grid_product
from .model import GraloraModel

__all__ = ["GraloraConfig", "GraloraLinear", "GraloraModel", "grid_product"]

register_peft_method(
    name="gralora",
    config_cls=GraloraConfig,
    model_cls=GraloraModel,
    default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)
