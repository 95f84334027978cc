"""peft-lokr: LoKr (low-rank Kronecker product) adapters for peft-core.

Importing the package registers the method "lokr" (`peft_type` "LOKR"); peft-core also finds it
through the `peft.methods` entry point when it loads a LoKr adapter.
"""

from peft_core import register_peft_method

from .config import LoKrConfig
from .factorization import factorization
from .layer import LoKrLayer
from .model import LoKrModel

__all__ = ["LoKrConfig", "LoKrLayer", "LoKrModel", "factorization"]

register_peft_method("lokr", LoKrModel, plugin_api=">=1,<2")
