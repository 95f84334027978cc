"""`PTuningModel`: P-tuning's encoder output in front of the input embeddings."""

from __future__ import annotations

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PromptEncoderConfig
from .encoder import PromptEncoder


class PTuningModel(PromptLearningTuner):
    prefix = "p_tuning_"
    config_cls = PromptEncoderConfig
    injects_cache = False  # core defaults encoder_hidden_size to token_dim
    encoder_cls = PromptEncoder
