"""peft-deft: DEFT (decompositional efficient fine-tuning: replace a learned subspace of each weight)
for peft-core.

Importing the package registers the method `deft` (peft_type `DEFT`); adapters saved by Hugging Face
PEFT with `peft_type: "DEFT"` load directly.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import DeftConfig
from .layer import DeftLinear
from .model import DeftModel

__all__ = ["DeftConfig", "DeftLinear", "DeftModel"]

register_peft_method(
    name="deft",
    config_cls=DeftConfig,
    model_cls=DeftModel,
    default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)
