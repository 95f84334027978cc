"""`PTuningModel`: P-tuning's encoder output in front of the input embeddings."""

from __future__ import annotations

from torch import nn

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PromptEncoderConfig
from .encoder import PromptEncoder


class PTuningModel(PromptLearningTuner):
    prefix = "p_tuning_"
    config_cls = PromptEncoderConfig
    injects_cache = False

    def _prepare_prompt_learning_config(self, config: PromptEncoderConfig, model: nn.Module) -> PromptEncoderConfig:
        config = super()._prepare_prompt_learning_config(config, model)
        if config.encoder_hidden_size is None:
            config.encoder_hidden_size = config.token_dim
        return config

    def _create_prompt_encoder(
        self, config: PromptEncoderConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> PromptEncoder:
        return PromptEncoder(config)
