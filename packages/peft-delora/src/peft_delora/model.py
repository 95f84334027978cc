"""`DeloraModel`: puts a `DeloraLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError, pattern_value
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import DeloraConfig
from .layer import DeloraLinear


class DeloraModel(BaseTuner):
    prefix = "delora_"
    config_cls = DeloraConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self,
        config: DeloraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        r = pattern_value(config.rank_pattern, current_key, config.r)
        delora_lambda = pattern_value(config.lambda_pattern, current_key, config.delora_lambda)
        args = (adapter_name, r, delora_lambda, config.module_dropout, config.init_weights)
        if isinstance(target, DeloraLinear):
            target.update_layer(*args)
            return
        if not isinstance(target, nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by DeLoRA; only "
                f"torch.nn.Linear is. Adjust target_modules."
            )
        layer = DeloraLinear(target)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
