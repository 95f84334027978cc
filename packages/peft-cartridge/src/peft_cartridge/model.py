"""`CartridgeModel`: a trained key/value cache prefix per adapter, passed to the model as its cache."""

from __future__ import annotations

from torch import nn

from peft_core import UnsupportedOperationError
from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import CartridgeConfig
from .encoder import CartridgeEncoder


class CartridgeModel(PromptLearningTuner):
    prefix = "cartridge_"
    config_cls = CartridgeConfig
    injects_cache = True  # core sizes the prefix for grouped-query attention (token_dim = head_dim * kv heads)

    def _create_prompt_encoder(
        self, config: CartridgeConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> CartridgeEncoder:
        if any(getattr(m, "gradient_checkpointing", False) for m in self.model.modules()):
            raise UnsupportedOperationError("CARTRIDGE passes its prefix as a cache, which gradient checkpointing drops; disable it.")
        return CartridgeEncoder(config)
