"""`PeanutModel`: puts a `PeanutLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .layer import PeanutLinear


class PeanutModel(TargetLayerTuner):
    prefix = "peanut_"
    target_layer = TargetLayer(PeanutLinear, "PEANuT", args=("r", "depth", "act_fn", "scaling", "init_weights"))
