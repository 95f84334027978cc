"""`CartridgeModel`: a trained key/value cache prefix per adapter, passed to the model as its cache."""

from __future__ import annotations

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import CartridgeConfig
from .encoder import CartridgeEncoder


class CartridgeModel(PromptLearningTuner):
    prefix = "cartridge_"
    config_cls = CartridgeConfig
    # core sizes the prefix for grouped-query attention (token_dim = head_dim * kv heads) and refuses gradient
    # checkpointing (it drops the cache)
    injects_cache = True
    encoder_cls = CartridgeEncoder
