"""`RoadModel`: puts a `RoadLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import RoadConfig
from .layer import RoadLinear


class RoadModel(BaseTuner):
    prefix = "road_"
    config_cls = RoadConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True

    def _create_and_replace(
        self,
        config: RoadConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        args = (adapter_name, config.variant, config.group_size, config.init_weights)
        if isinstance(target, RoadLinear):
            target.update_layer(*args)
            return
        if not isinstance(target, nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by RoAd; only "
                f"torch.nn.Linear is. Adjust target_modules."
            )
        if target.out_features % config.group_size:
            raise ConfigError(
                f"RoAd group_size={config.group_size} does not divide the {target.out_features} output features of "
                f"{current_key!r}; choose a group_size that divides every adapted layer's output size."
            )
        layer = RoadLinear(target)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
