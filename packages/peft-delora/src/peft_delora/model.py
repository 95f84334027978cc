"""`DeloraModel`: puts a `DeloraLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from peft_core import pattern_value
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import DeloraConfig
from .layer import DeloraLinear


class DeloraModel(TargetLayerTuner):
    prefix = "delora_"
    config_cls = DeloraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(DeloraLinear, "DeLoRA", nests=False)

    def layer_args(self, config: DeloraConfig, adapter_name: str, current_key: str) -> tuple:  # type: ignore[override]
        r = pattern_value(config.rank_pattern, current_key, config.r)
        delora_lambda = pattern_value(config.lambda_pattern, current_key, config.delora_lambda)
        return (r, delora_lambda, config.module_dropout, config.init_weights)
