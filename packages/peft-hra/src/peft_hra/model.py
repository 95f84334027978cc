"""`HRAModel`: puts HRA layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner

from .config import HRAConfig
from .layer import HRAConv2d, HRALayer, HRALinear


class HRAModel(BaseTuner):
    """Householder reflection adaptation (Yuan et al. 2024, https://huggingface.co/papers/2405.17484)."""

    prefix = "hra_"

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
