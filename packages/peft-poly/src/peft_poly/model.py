"""`PolyModel`: puts a `PolyLinear` on every targeted `nn.Linear`; `forward` / `generate` take `task_ids`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import PolyConfig
from .layer import PolyLinear
from .routing import using_task_ids


class PolyModel(BaseTuner):
    prefix = "poly_"
    config_cls = PolyConfig
    default_target_modules = QUERY_VALUE_TARGETS
    # The skills' mix depends on each row's task: there is no single weight to fold in.
    supports_merge = False

    def _check_merge_allowed(self) -> None:
        if not self.supports_merge:
            from peft_core import UnsupportedOperationError

            raise UnsupportedOperationError(
                "Poly adapters can't be merged: each row's update depends on its task id through the router, so no "
                "single weight change exists. Keep the PeftModel (pass task_ids), or use unload() for the base model."
            )

    def _create_and_replace(self, config: PolyConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str) -> None:
        args = dict(
            r=config.r, n_tasks=config.n_tasks, n_skills=config.n_skills, n_splits=config.n_splits,
            init_weights=config.init_weights,
        )
        if not isinstance(target, (PolyLinear, nn.Linear)):
            raise ConfigError(
                f"Poly adapts torch.nn.Linear layers only; target module {current_key!r} is a {type(target).__name__}. "
                f"Adjust target_modules."
            )
        layer = target if isinstance(target, PolyLinear) else PolyLinear(target)
        layer.update_layer(adapter_name, **args)
        if layer is not target:
            setattr(parent, target_name, layer)

    def forward(self, *args: Any, task_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        with using_task_ids(task_ids):
            return self.model.forward(*args, **kwargs)

    def generate(self, *args: Any, task_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        with using_task_ids(task_ids):
            return self.model.generate(*args, **kwargs)
