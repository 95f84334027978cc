"""`GloraModel`: puts a `GloraLinear` around every targeted plain `nn.Linear`."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import PLAIN_LINEAR, TargetLayer, TargetLayerTuner

from .config import GloraConfig
from .layer import GloraLinear


class GloraModel(TargetLayerTuner):
    prefix = "glora_"
    config_cls = GloraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(
        GloraLinear, "GLoRA", PLAIN_LINEAR, args=("r", "config_A_B", "config_C", "config_D_E", "init_weights")
    )
