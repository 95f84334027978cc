"""`GloraModel`: puts a `GloraLinear` around every targeted plain `nn.Linear`."""

from __future__ import annotations

from peft_core.tuners.target_layer import PLAIN_LINEAR, TargetLayer, TargetLayerTuner

from .layer import GloraLinear


class GloraModel(TargetLayerTuner):
    prefix = "glora_"
    target_layer = TargetLayer(
        GloraLinear, "GLoRA", PLAIN_LINEAR, args=("r", "config_A_B", "config_C", "config_D_E", "init_weights")
    )
