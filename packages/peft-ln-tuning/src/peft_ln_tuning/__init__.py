"""peft-ln-tuning: LN tuning (trainable copies of the normalization layers) for peft-core.

Importing the package registers the `ln_tuning` method; adapters saved by Hugging Face PEFT with
`peft_type: "LN_TUNING"` load directly (`peft_core.PeftModel.from_pretrained`).
"""

from peft_core import register_peft_method

from .config import LNTuningConfig
from .defaults import TARGET_MODULES
from .layer import LNTuningLayer
from .model import LNTuningModel

register_peft_method("ln_tuning", LNTuningModel, plugin_api=">=1,<2")

__all__ = ["LNTuningConfig", "LNTuningLayer", "LNTuningModel", "TARGET_MODULES"]
