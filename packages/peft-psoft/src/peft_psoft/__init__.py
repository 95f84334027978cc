"""peft-psoft: PSOFT (orthogonal fine-tuning in the principal subspace) for peft-core.

Importing the package registers the method `psoft` (peft_type `PSOFT`, prefix `psoft_`, which
contains OFT's `oft_`: keys are selected structurally, never by prefix); adapters saved by Hugging
Face PEFT with `peft_type: "PSOFT"` load directly.
"""

from peft_core import register_peft_method

from .config import PsoftConfig
from .layer import PsoftLinear
from .model import PsoftModel
from .rotation import PsoftRotation
from .subspace import subspace

__all__ = ["PsoftConfig", "PsoftLinear", "PsoftModel", "PsoftRotation", "subspace"]

register_peft_method("psoft", PsoftModel, plugin_api=">=1,<2")
