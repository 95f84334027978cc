"""peft-waveft: WaveFT (wavelet fine-tuning) for peft-core.

Importing the package registers the method `waveft` (peft_type `WAVEFT`); adapters saved by
Hugging Face PEFT with `peft_type: "WAVEFT"` load directly. Wavelet filters come from PyWavelets.
"""

from peft_core import register_peft_method

from .config import WaveFTConfig
from .defaults import TARGET_MODULES
from .families import FAMILIES
from .idwt import inverse_dwt2
from .layer import WaveFTLinear, coefficient_positions, delta_from_spectrum
from .model import WaveFTModel

__all__ = [
    "FAMILIES",
    "TARGET_MODULES",
    "WaveFTConfig",
    "WaveFTLinear",
    "WaveFTModel",
    "coefficient_positions",
    "delta_from_spectrum",
    "inverse_dwt2",
]

register_peft_method("waveft", WaveFTModel, plugin_api=">=1,<2")
