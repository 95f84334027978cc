"""peft-osf: Orthogonal Subspace Fine-tuning (retrain a weight's low singular subspace) for peft-core.

Importing the package registers the method `osf` (peft_type `OSF`); adapters saved by Hugging Face
PEFT with `peft_type: "OSF"` load directly.
"""

from peft_core import register_peft_method

from .config import OSFConfig
from .layer import OSFLinear
from .model import OSFModel, resolve_rank
from .subspace import project_gradient, split_weight

__all__ = ["OSFConfig", "OSFLinear", "OSFModel", "project_gradient", "resolve_rank", "split_weight"]

register_peft_method("osf", OSFModel, plugin_api=">=1,<2")
