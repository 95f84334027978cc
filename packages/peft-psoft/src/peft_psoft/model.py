"""`PsoftModel`: puts a `PsoftLinear` around every targeted `nn.Linear` (the only layer type HF supports)."""

from __future__ import annotations

from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .layer import PsoftLinear


class PsoftModel(TargetLayerTuner):
    prefix = "psoft_"
    target_layer = TargetLayer(PsoftLinear, "PSOFT")
