"""`GloraModel`: puts a `GloraLinear` around every targeted `nn.Linear`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS

from .config import GloraConfig
from .layer import GloraLinear


class GloraModel(BaseTuner):
    prefix = "glora_"
    config_cls = GloraConfig
    default_target_modules = QUERY_VALUE_TARGETS

    def _create_and_replace(
        self, config: GloraConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = (adapter_name, config.r, config.config_A_B, config.config_C, config.config_D_E, config.init_weights)
        if isinstance(target, GloraLinear):
            target.update_layer(*args)
            return
        if type(self.wrapped_base(target, current_key)) is not nn.Linear:
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by GLoRA; only plain "
                f"torch.nn.Linear is (as in Hugging Face PEFT). Adjust target_modules."
            )
        layer = GloraLinear(target)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
