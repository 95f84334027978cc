"""`PrefixTuningModel`: learned key/value prefixes, passed to the model as its cache."""

from __future__ import annotations

from torch import nn

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import PrefixTuningConfig
from .encoder import PrefixEncoder


def _config_dict(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config) if isinstance(config, dict) else vars(config)
    text = data.get("text_config")
    return dict(text) if isinstance(text, dict) else dict(data)


class PrefixTuningModel(PromptLearningTuner):
    prefix = "prefix_tuning_"
    injects_cache = True

    def _prepare_prompt_learning_config(self, config: PrefixTuningConfig, model: nn.Module) -> PrefixTuningConfig:
        config = super()._prepare_prompt_learning_config(config, model)
        data = _config_dict(model)
        if "num_key_value_heads" in data:
            # Grouped-query attention: the cache holds key/value heads, so the prefix is sized for them.
            if data.get("global_head_dim") is not None or data.get("per_layer_config") is not None:
                raise ValueError(
                    f"{type(model).__name__} has per-layer key/value shapes (global_head_dim / per_layer_config); "
                    f"peft-prefix-tuning does not implement prefix tuning for such models."
                )
            head_dim = data.get("head_dim") or config.token_dim // config.num_attention_heads
            kv_heads = data["num_key_value_heads"]
            config.token_dim = head_dim * kv_heads
            config.num_attention_heads = kv_heads
        if config.encoder_hidden_size is None:
            config.encoder_hidden_size = config.token_dim
        return config

    def _create_prompt_encoder(
        self, config: PrefixTuningConfig, adapter_name: str, word_embeddings: nn.Module | None
    ) -> PrefixEncoder:
        if any(getattr(m, "gradient_checkpointing", False) for m in self.model.modules()):
            raise ValueError("Prefix tuning passes its prefixes as a cache, which gradient checkpointing drops; disable it.")
        return PrefixEncoder(config)
