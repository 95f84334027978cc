"""`TrainableTokensModel`: puts `TrainableTokensLayer`s on the targeted embedding(s) and their tied layers."""

from __future__ import annotations

from typing import Any

from peft_core import BaseTuner
from torch import nn

from .config import TrainableTokensConfig
from .layer import TrainableTokensLayer
from .tying import config_ties_embeddings, input_embedding_name, put_token_layer, tied_module_names


class TrainableTokensModel(BaseTuner):
    """Trainable-tokens tuner; see `TrainableTokensConfig`.

    With tied input/output embeddings (`tie_word_embeddings`), the layers sharing the input
    embedding's weight get a layer tied to it: they compute with the trained rows, and the file holds
    the rows under both paths (Hugging Face PEFT's layout).
    """

    prefix = "trainable_tokens_"
    config_cls = TrainableTokensConfig

    def _prepare_adapter_config(self, config: Any, model: nn.Module) -> Any:
        if config.target_modules is None:
            config.target_modules = input_embedding_name(model, "embed_tokens")
        return config

    def _create_and_replace(
        self,
        config: TrainableTokensConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        put_token_layer(self.model, current_key, adapter_name, config.token_indices, config.init_weights)

    def _add_auxiliary_layers(self, config: Any, adapter_name: str, low_cpu_mem_usage: bool) -> None:
        """Tie the layers that share the input embedding's weight to its token layer."""
        if not config_ties_embeddings(self.model):
            return
        name = input_embedding_name(self.model, default=None)
        source = self.model.get_submodule(name) if name is not None else None
        if not isinstance(source, TrainableTokensLayer):
            return
        for key in tied_module_names(self.model):  # a tied layer targeted explicitly too becomes a tied one
            put_token_layer(self.model, key, adapter_name, config.token_indices, tied_to=source, save_tied=True)

    def saves_targeted_embedding_weights(self, adapter_name: str) -> bool:
        return False  # only the trained rows are saved, never the whole embedding
