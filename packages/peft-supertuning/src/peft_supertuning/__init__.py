"""peft-supertuning: Super-Tuning (sparse fine-tuning of the largest weight entries, optionally with a
LoRA: "Supra") for peft-core.

Importing the package registers the method `supertuning` (peft_type `SUPERTUNING`); adapters saved
by Hugging Face PEFT with `peft_type: "SUPERTUNING"` load directly.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import SupertuningConfig
from .layer import SupertuningLinear
from .model import SupertuningModel

__all__ = ["SupertuningConfig", "SupertuningLinear", "SupertuningModel"]

register_peft_method(
    name="supertuning",
    config_cls=SupertuningConfig,
    model_cls=SupertuningModel,
    default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)
