"""peft-loha: LoHa (low-rank Hadamard product) adapters for peft-core.

Importing the package registers the method "loha" (`peft_type` "LOHA"); peft-core also finds it
through the `peft.methods` entry point when it loads a LoHa adapter.
"""

from peft_core import register_peft_method
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import LoHaConfig
from .layer import LoHaLayer
from .model import LoHaModel

__all__ = ["LoHaConfig", "LoHaLayer", "LoHaModel"]

register_peft_method(
    name="loha",
    config_cls=LoHaConfig,
    model_cls=LoHaModel,
    prefix="hada_",
    is_mixed_compatible=True,
    default_target_modules=QUERY_VALUE_TARGETS,
    plugin_api=">=1,<2",
)
