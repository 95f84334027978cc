"""`PsoftModel`: puts a `PsoftLinear` around every targeted `nn.Linear` (the only layer type HF supports)."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.errors import unsupported_target
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out

from .config import PsoftConfig
from .layer import PsoftLinear


class PsoftModel(BaseTuner):
    prefix = "psoft_"
    config_cls = PsoftConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self, config: PsoftConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, PsoftLinear):
            target.update_layer(adapter_name, config)
            return
        base = self.wrapped_base(target, current_key)
        if not isinstance(base, nn.Linear):
            raise unsupported_target(current_key, base, "PSOFT", "torch.nn.Linear only (as in Hugging Face PEFT)")
        reconcile_fan_in_fan_out(config, base)
        layer = PsoftLinear(target)
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)
