"""peft-unilora: Uni-LoRA (every LoRA factor entry of the model read from one shared trained vector)
for peft-core.

Importing the package registers the method `unilora` (peft_type `UNILORA`); adapters saved by Hugging
Face PEFT with `peft_type: "UNILORA"` load directly.
"""

from peft_core import register_peft_method

from .config import UniLoraConfig
from .layer import UniLoraLinear
from .model import UniLoraModel

__all__ = ["UniLoraConfig", "UniLoraLinear", "UniLoraModel"]

register_peft_method("unilora", UniLoraModel, plugin_api=">=1,<2")
