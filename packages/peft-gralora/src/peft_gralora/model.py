"""`GraloraModel`: puts a `GraloraLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out

from .config import GraloraConfig
from .layer import GraloraLinear


class GraloraModel(BaseTuner):
    prefix = "gralora_"
    config_cls = GraloraConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self,
        config: GraloraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        args = (adapter_name, config.r, config.hybrid_r, config.alpha, config.gralora_k, config.gralora_dropout)
        if isinstance(target, GraloraLinear):
            target.update_layer(*args, config.init_weights)
            return
        if linear_features(target) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by GraLoRA; supported are "
                f"torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, target)
        layer = GraloraLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        try:
            layer.update_layer(*args, config.init_weights)
        except ConfigError as exc:
            raise ConfigError(f"{current_key!r}: {exc}") from None
        setattr(parent, target_name, layer)
