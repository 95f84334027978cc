"""`PrefixTuningModel`: learned key/value prefixes, passed to the model as its cache."""

from __future__ import annotations

from torch import nn

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PrefixTuningConfig
from .encoder import PrefixEncoder


class PrefixTuningModel(PromptLearningTuner):
    prefix = "prefix_tuning_"
    config_cls = PrefixTuningConfig
    injects_cache = True

    def _prepare_prompt_learning_config(self, config: PrefixTuningConfig, model: nn.Module) -> PrefixTuningConfig:
        # core sizes cache prefixes for grouped-query attention (token_dim = head_dim * kv heads)
        config = super()._prepare_prompt_learning_config(config, model)
        if config.encoder_hidden_size is None:
            config.encoder_hidden_size = config.token_dim
        return config

    def _create_prompt_encoder(
        self, config: PrefixTuningConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> PrefixEncoder:
        if any(getattr(m, "gradient_checkpointing", False) for m in self.model.modules()):
            raise ValueError("Prefix tuning passes its prefixes as a cache, which gradient checkpointing drops; disable it.")
        return PrefixEncoder(config)
