"""`GraloraModel`: puts a `GraloraLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner

from .config import GraloraConfig
from .layer import GraloraLinear

# GraloraLinear.update_layer's arguments after the adapter name, in order
LAYER_FIELDS = ("r", "hybrid_r", "alpha", "gralora_k", "gralora_dropout", "init_weights")


class GraloraModel(TargetLayerTuner):
    prefix = "gralora_"
    config_cls = GraloraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(GraloraLinear, "GraLoRA", LINEAR_OR_CONV1D, args=LAYER_FIELDS, nests=False)
