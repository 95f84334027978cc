"""`PrefixTuningModel`: learned key/value prefixes, passed to the model as its cache."""

from __future__ import annotations

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PrefixTuningConfig
from .encoder import PrefixEncoder


class PrefixTuningModel(PromptLearningTuner):
    prefix = "prefix_tuning_"
    config_cls = PrefixTuningConfig
    # core sizes cache prefixes for grouped-query attention (token_dim = head_dim * kv heads), defaults
    # encoder_hidden_size to token_dim and refuses gradient checkpointing (it drops the cache)
    injects_cache = True
    encoder_cls = PrefixEncoder
