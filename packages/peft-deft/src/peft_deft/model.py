"""`DeftModel`: puts a `DeftLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner

from .config import DeftConfig
from .layer import DeftLinear

# DeftLinear.update_layer's arguments after the adapter name, in order
LAYER_FIELDS = ("r", "decomposition_method", "alpha", "para", "deft_dropout", "init_weights", "init_scale")


class DeftModel(TargetLayerTuner):
    prefix = "deft_"
    config_cls = DeftConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(DeftLinear, "DEFT", LINEAR_OR_CONV1D, args=LAYER_FIELDS)
