"""`PeanutModel`: puts a `PeanutLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import PeanutConfig
from .layer import PeanutLinear


class PeanutModel(TargetLayerTuner):
    prefix = "peanut_"
    config_cls = PeanutConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(PeanutLinear, "PEANuT", args=("r", "depth", "act_fn", "scaling", "init_weights"))
