"""peft-trainable-tokens: train selected rows of an embedding (new or changed tokens) and nothing else.

Importing the package registers the `trainable_tokens` method (peft_type "TRAINABLE_TOKENS"); peft-core
also finds it through the `peft.methods` entry point when it loads such an adapter. Other methods reuse
its layer for their own options (LoRA's `trainable_token_indices`) through `put_token_layer`.

    from peft_core import get_peft_model
    from peft_trainable_tokens import TrainableTokensConfig

    model = get_peft_model(base_model, TrainableTokensConfig(token_indices=new_token_ids))
"""

from __future__ import annotations

from peft_core import register_peft_method

from .config import TrainableTokensConfig, check_token_ids
from .layer import TrainableTokensLayer
from .model import TrainableTokensModel
from .tying import config_ties_embeddings, input_embedding_name, put_token_layer, tied_module_names

__version__ = "0.1.0"

register_peft_method("trainable_tokens", TrainableTokensModel, plugin_api=">=1,<2")

__all__ = [
    "TrainableTokensConfig",
    "TrainableTokensLayer",
    "TrainableTokensModel",
    "__version__",
    "check_token_ids",
    "config_ties_embeddings",
    "input_embedding_name",
    "put_token_layer",
    "tied_module_names",
]
