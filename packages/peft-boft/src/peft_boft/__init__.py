"""peft-boft: butterfly orthogonal fine-tuning (BOFT) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `boft` (peft_type `"BOFT"`).
"""

from peft_core import register_peft_method

from .butterfly import butterfly_matrix, butterfly_permutation, cayley
from .config import BOFTConfig
from .layer import BOFTLayer, Conv2d, Linear
from .model import BOFTModel

register_peft_method("boft", BOFTModel, plugin_api=">=1,<2")

__all__ = [
    "BOFTConfig", "BOFTLayer", "BOFTModel", "Conv2d", "Linear", "butterfly_matrix", "butterfly_permutation",
    "cayley",
]
