"""`PsoftModel`: puts a `PsoftLinear` around every targeted `nn.Linear` (the only layer type HF supports)."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import PsoftConfig
from .layer import PsoftLinear


class PsoftModel(TargetLayerTuner):
    prefix = "psoft_"
    config_cls = PsoftConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(PsoftLinear, "PSOFT")
