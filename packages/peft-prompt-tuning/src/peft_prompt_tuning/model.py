"""`PromptTuningModel`: virtual tokens in front of the input embeddings."""

from __future__ import annotations

from torch import nn

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PromptTuningConfig
from .encoder import PromptEmbedding


class PromptTuningModel(PromptLearningTuner):
    prefix = "prompt_tuning_"
    config_cls = PromptTuningConfig
    injects_cache = False

    def _create_prompt_encoder(
        self, config: PromptTuningConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> PromptEmbedding:
        return PromptEmbedding(config, word_embeddings)
