"""`DeftModel`: puts a `DeftLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out

from .config import DeftConfig
from .layer import DeftLinear


class DeftModel(BaseTuner):
    prefix = "deft_"
    config_cls = DeftConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self, config: DeftConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, DeftLinear):
            target.update_layer(adapter_name, **self._layer_kwargs(config))
            return
        base = self.wrapped_base(target, current_key)
        if linear_features(base) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by DEFT; supported are "
                f"torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, base)
        layer = DeftLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(adapter_name, **self._layer_kwargs(config))
        setattr(parent, target_name, layer)

    @staticmethod
    def _layer_kwargs(config: DeftConfig) -> dict:
        return dict(
            r=config.r,
            decomposition_method=config.decomposition_method,
            alpha=config.alpha,
            para=config.para,
            dropout=config.deft_dropout,
            init_weights=config.init_weights,
            init_scale=config.init_scale,
        )
