"""peft-fourierft: FourierFT (fine-tuning in the Fourier domain of the weights) for peft-core.

Importing the package registers the `fourierft` method; adapters saved by Hugging Face PEFT with
`peft_type: "FOURIERFT"` load directly (`peft_core.PeftModel.from_pretrained`).
"""

from peft_core import register_peft_method

from .config import FourierFTConfig
from .defaults import TARGET_MODULES
from .layer import FourierFTLinear, frequency_indices
from .model import FourierFTModel, n_frequency_for

register_peft_method("fourierft", FourierFTModel, plugin_api=">=1,<2")

__all__ = [
    "FourierFTConfig",
    "FourierFTLinear",
    "FourierFTModel",
    "TARGET_MODULES",
    "frequency_indices",
    "n_frequency_for",
]
