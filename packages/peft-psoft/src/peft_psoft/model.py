"""`PsoftModel`: puts a `PsoftLinear` around every targeted `nn.Linear` (the only layer type HF supports)."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out

from .config import PsoftConfig
from .layer import PsoftLinear


class PsoftModel(BaseTuner):
    prefix = "psoft_"

    def _create_and_replace(
        self, config: PsoftConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, PsoftLinear):
            target.update_layer(adapter_name, config)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by PSOFT; only "
                f"torch.nn.Linear is (as in Hugging Face PEFT). Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, base)
        layer = PsoftLinear(target)
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)
