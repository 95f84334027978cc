"""`AdaptionPromptModel`: wraps the top `adapter_layers` attention modules in `AdaptedAttention`."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from peft_core import BaseTuner, ConfigError, UnsupportedOperationError

from .attention import ARCHITECTURES, architecture_of
from .config import AdaptionPromptConfig
from .layer import AdaptedAttention


class AdaptionPromptModel(BaseTuner):
    prefix = "adaption_"  # both tensors: adaption_prompt and adaption_gate (HF's names)
    config_cls = AdaptionPromptConfig
    default_target_modules = {name: (arch.target_modules,) for name, arch in ARCHITECTURES.items()}
    supports_merge = False

    def _check_merge_allowed(self) -> None:
        raise UnsupportedOperationError(
            "Adaption prompts add attention over learned tokens, not a weight change: they can't be merged into "
            "the base weights. Keep the PeftModel, or use unload() to get the base model back."
        )

    def _prepare_adapter_config(self, config: AdaptionPromptConfig, model: nn.Module) -> AdaptionPromptConfig:
        arch = architecture_of(model)
        if config.target_modules is None:
            config.target_modules = arch.target_modules
        for attr in ("adapter_len", "adapter_layers"):
            if getattr(config, attr) is None:
                raise ConfigError(f"AdaptionPromptConfig.{attr} must be set (a positive integer, e.g. {attr}=10).")
        return config

    def _match(self, config: AdaptionPromptConfig, named: Sequence[tuple[str, nn.Module]]) -> tuple[list[str], int]:
        """The attention modules named `target_modules` (dotted suffix), the last `adapter_layers` of them:
        the model's top layers (Hugging Face PEFT's rule)."""
        suffix = "." + config.target_modules
        found = [key for key, _ in named if key.endswith(suffix)]
        if len(found) < config.adapter_layers:
            raise ConfigError(
                f"adapter_layers={config.adapter_layers} but the model has {len(found)} modules named "
                f"{config.target_modules!r}; use at most {len(found)}."
            )
        return found[len(found) - config.adapter_layers :], 0

    def _create_and_replace(self, config: AdaptionPromptConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str) -> None:
        if isinstance(target, AdaptedAttention):
            target.update_layer(adapter_name, config.adapter_len)
            return
        layer = AdaptedAttention(target, architecture_of(self.model))
        layer.update_layer(adapter_name, config.adapter_len)
        setattr(parent, target_name, layer)
