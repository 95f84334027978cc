"""peft-ia3: (IA)³, learned vectors that rescale layer activations, for peft-core.

Importing the package registers the `ia3` method; adapters saved by Hugging Face PEFT with
`peft_type: "IA3"` load directly (`peft_core.PeftModel.from_pretrained`).
"""

from peft_core import register_peft_method

from .config import IA3Config
from .defaults import FEEDFORWARD_MODULES, TARGET_MODULES
from .layer import IA3Conv, IA3Layer, IA3Linear
from .model import IA3Model

register_peft_method("ia3", IA3Model, plugin_api=">=1,<2")

__all__ = [
    "FEEDFORWARD_MODULES",
    "IA3Config",
    "IA3Conv",
    "IA3Layer",
    "IA3Linear",
    "IA3Model",
    "TARGET_MODULES",
]
