"""peft-loha: LoHa (low-rank Hadamard product) adapters for peft-core.

Importing the package registers the method "loha" (`peft_type` "LOHA"); peft-core also finds it
through the `peft.methods` entry point when it loads a LoHa adapter.
"""

from peft_core import register_peft_method

from .config import LoHaConfig
from .layer import LoHaLayer
from .model import LoHaModel

__all__ = ["LoHaConfig", "LoHaLayer", "LoHaModel"]

register_peft_method("loha", LoHaModel, plugin_api=">=1,<2")
