"""peft-boft: butterfly orthogonal fine-tuning (BOFT) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `boft` (peft_type `"BOFT"`).
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .butterfly import butterfly_matrix, butterfly_permutation, cayley
from .config import BOFTConfig
from .layer import BOFTLayer, Conv2d, Linear
from .model import BOFTModel

register_peft_method(
    name="boft", config_cls=BOFTConfig, model_cls=BOFTModel, is_mixed_compatible=True,
    default_target_modules=QUERY_VALUE_TARGETS, plugin_api=">=1,<2",
)

__all__ = [
    "BOFTConfig", "BOFTLayer", "BOFTModel", "Conv2d", "Linear", "butterfly_matrix", "butterfly_permutation",
    "cayley",
]
