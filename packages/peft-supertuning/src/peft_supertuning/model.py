"""`SupertuningModel`: puts a `SupertuningLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import ConfigError, PeftConfig
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import SupertuningConfig
from .layer import SupertuningLinear


class SupertuningModel(TargetLayerTuner):
    prefix = "supertuning_"
    config_cls = SupertuningConfig
    default_target_modules = QUERY_VALUE_TARGETS
    target_layer = TargetLayer(
        SupertuningLinear, "Super-Tuning", args=("sparsity", "select_top", "r", "lora_alpha", "lora_dropout", "init_weights")
    )

    def _check_new_adapter_config(self, config: PeftConfig) -> None:
        super()._check_new_adapter_config(config)
        # one layer keeps every adapter's positions in one container: saved for all adapters or for none
        choices = {c.save_precomputed_indices for c in self.peft_config.values() if isinstance(c, SupertuningConfig)}
        if len(choices) > 1:
            raise ConfigError(
                "Super-Tuning positions must be saved for all adapters of a model or for none, but the adapters "
                "set save_precomputed_indices differently; give the new adapter the same value."
            )

    def new_layer(self, target: nn.Module, config: SupertuningConfig, current_key: str) -> SupertuningLinear:  # type: ignore[override]
        return SupertuningLinear(target, save_indices=config.save_precomputed_indices)
