"""`HRAModel`: puts HRA layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, PeftConfig

from .bias import BiasModesMixin
from .config import HRAConfig
from .layer import HRAConv2d, HRALayer, HRALinear
from .targets import DEFAULT_TARGET_REGEX


def _model_type(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    if isinstance(config, dict):
        return config.get("model_type")
    return getattr(config, "model_type", None)


class HRAModel(BiasModesMixin, BaseTuner):
    """Householder reflection adaptation (Yuan et al. 2024, https://huggingface.co/papers/2405.17484)."""

    prefix = "hra_"

    def _prepare_adapter_config(self, config: PeftConfig, model: nn.Module) -> PeftConfig:
        if getattr(config, "target_modules", "") is None:
            regex = DEFAULT_TARGET_REGEX.get(_model_type(model) or "")
            if regex is not None:
                config.target_modules = regex
                return config
        return super()._prepare_adapter_config(config, model)

    def _create_and_replace(
        self,
        config: HRAConfig,  # type: ignore[override]
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, HRALayer):
            target.update_layer(adapter_name, config.r, config)
            return
        if isinstance(target, nn.Linear):
            layer: HRALayer = HRALinear(target)
        elif isinstance(target, nn.Conv2d):
            layer = HRAConv2d(target)
        else:
            raise TypeError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by HRA: only torch.nn.Linear "
                f"and torch.nn.Conv2d are (as in Hugging Face PEFT). Adjust target_modules."
            )
        layer.update_layer(adapter_name, config.r, config)
        setattr(parent, target_name, layer)
