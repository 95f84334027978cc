"""`SupertuningModel`: puts a `SupertuningLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError, PeftConfig
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import SupertuningConfig
from .layer import SupertuningLinear


class SupertuningModel(BaseTuner):
    prefix = "supertuning_"
    config_cls = SupertuningConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _check_new_adapter_config(self, config: PeftConfig) -> None:
        super()._check_new_adapter_config(config)
        # one layer keeps every adapter's positions in one container: saved for all adapters or for none
        choices = {c.save_precomputed_indices for c in self.peft_config.values() if isinstance(c, SupertuningConfig)}
        if len(choices) > 1:
            raise ConfigError(
                "Super-Tuning positions must be saved for all adapters of a model or for none, but the adapters "
                "set save_precomputed_indices differently; give the new adapter the same value."
            )

    def _create_and_replace(
        self, config: SupertuningConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        kwargs = dict(
            sparsity=config.sparsity,
            select_top=config.select_top,
            r=config.r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            init_weights=config.init_weights,
        )
        if isinstance(target, SupertuningLinear):
            target.update_layer(adapter_name, **kwargs)
            return
        if not isinstance(self.wrapped_base(target, current_key), nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by Super-Tuning; only "
                f"torch.nn.Linear is. Adjust target_modules."
            )
        layer = SupertuningLinear(target, save_indices=config.save_precomputed_indices)
        layer.update_layer(adapter_name, **kwargs)
        setattr(parent, target_name, layer)
