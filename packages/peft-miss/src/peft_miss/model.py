"""`MissModel`: puts MiSS layers on the targeted `nn.Linear` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, PeftConfig

from .bias import BiasModesMixin
from .config import MissConfig
from .layer import MissLinear
from .targets import DEFAULT_TARGET_REGEX


def _model_type(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    if isinstance(config, dict):
        return config.get("model_type")
    return getattr(config, "model_type", None)


class MissModel(BiasModesMixin, BaseTuner):
    """MiSS: shard sharing (Kang et al. 2024, https://huggingface.co/papers/2409.15371), formerly Bone."""

    prefix = "miss_"

    def _prepare_adapter_config(self, config: PeftConfig, model: nn.Module) -> PeftConfig:
        if getattr(config, "target_modules", "") is None:
            regex = DEFAULT_TARGET_REGEX.get(_model_type(model) or "")
            if regex is not None:
                config.target_modules = regex
                return config
        return super()._prepare_adapter_config(config, model)

    def _create_and_replace(
        self,
        config: MissConfig,  # type: ignore[override]
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, MissLinear):
            target.update_layer(adapter_name, config.r, config)
            return
        if not isinstance(target, nn.Linear):
            raise TypeError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by MiSS: only "
                f"torch.nn.Linear is (as in Hugging Face PEFT). Adjust target_modules."
            )
        layer = MissLinear(target)
        layer.update_layer(adapter_name, config.r, config)
        setattr(parent, target_name, layer)
