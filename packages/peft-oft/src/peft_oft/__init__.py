"""peft-oft: orthogonal fine-tuning (OFT) for peft-core, file-compatible with Hugging Face PEFT.

Importing the package registers the method `oft` (peft_type `"OFT"`).
"""

from peft_core import register_peft_method

from .config import OFTConfig
from .layer import Conv2d, Embedding, Linear, OFTLayer
from .model import OFTModel
from .rotation import OFTRotation, cayley_exact, cayley_neumann

register_peft_method("oft", OFTModel, plugin_api=">=1,<2")

__all__ = [
    "Conv2d", "Embedding", "Linear", "OFTConfig", "OFTLayer", "OFTModel", "OFTRotation", "cayley_exact",
    "cayley_neumann",
]
