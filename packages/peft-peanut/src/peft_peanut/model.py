"""`PeanutModel`: puts a `PeanutLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import PeanutConfig
from .layer import PeanutLinear


class PeanutModel(BaseTuner):
    prefix = "peanut_"
    config_cls = PeanutConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self, config: PeanutConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = (adapter_name, config.r, config.depth, config.act_fn, config.scaling, config.init_weights)
        if isinstance(target, PeanutLinear):
            target.update_layer(*args)
            return
        if not isinstance(self.wrapped_base(target, current_key), nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by PEANuT; only "
                f"torch.nn.Linear is. Adjust target_modules."
            )
        layer = PeanutLinear(target)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
