"""peft-hra: Householder reflection adaptation (HRA) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `hra` (peft_type `"HRA"`).
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import HRAConfig
from .layer import HRAConv2d, HRALayer, HRALinear
from .model import HRAModel
from .reflections import gram_schmidt_reflection, householder_product, hra_matrix

register_peft_method(
    name="hra", config_cls=HRAConfig, model_cls=HRAModel, default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)

__all__ = [
    "HRAConfig", "HRAConv2d", "HRALayer", "HRALinear", "HRAModel", "gram_schmidt_reflection", "householder_product",
    "hra_matrix",
]
