"""`RoadModel`: puts a `RoadLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import RoadConfig
from .layer import RoadLinear


class RoadModel(TargetLayerTuner):
    prefix = "road_"
    config_cls = RoadConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True
    target_layer = TargetLayer(RoadLinear, "RoAd", args=("variant", "group_size", "init_weights"), nests=False)

    def new_layer(self, target: nn.Module, config: RoadConfig, current_key: str) -> RoadLinear:  # type: ignore[override]
        if target.out_features % config.group_size:
            raise ConfigError(
                f"RoAd group_size={config.group_size} does not divide the {target.out_features} output features of "
                f"{current_key!r}; choose a group_size that divides every adapted layer's output size."
            )
        return RoadLinear(target)
