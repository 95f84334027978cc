"""`DeloraModel`: puts a `DeloraLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import PerModule, TargetLayer, TargetLayerTuner

from .config import DeloraConfig
from .layer import DeloraLinear


class DeloraModel(TargetLayerTuner):
    prefix = "delora_"
    config_cls = DeloraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(
        DeloraLinear,
        "DeLoRA",
        args=(PerModule("r", "rank_pattern"), PerModule("delora_lambda", "lambda_pattern"), "module_dropout", "init_weights"),
        nests=False,
    )
