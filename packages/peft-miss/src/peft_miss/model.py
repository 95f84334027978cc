"""`MissModel`: puts MiSS layers on the targeted `nn.Linear` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner

from .config import MissConfig
from .layer import MissLinear


class MissModel(BaseTuner):
    """MiSS: shard sharing (Kang et al. 2024, https://huggingface.co/papers/2409.15371), formerly Bone."""

    prefix = "miss_"

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
