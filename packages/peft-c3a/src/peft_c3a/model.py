"""`C3AModel`: puts a `C3ALinear` around every targeted `nn.Linear`."""

from __future__ import annotations

import re

from torch import nn

from peft_core import BaseTuner, ConfigError

from .config import C3AConfig
from .defaults import TARGET_MODULES
from .layer import C3ALinear


def block_size_for(config: C3AConfig, key: str) -> int:
    """HF's older pattern rule (as for FourierFT): the first key `p` with `re.match(".*\\.p$", key)`,
    else an entry equal to the full name, else `block_size`."""
    patterns = config.block_size_pattern or {}
    hit = next((p for p in patterns if re.match(rf".*\.{p}$", key)), key)
    return patterns.get(hit, config.block_size)


class C3AModel(BaseTuner):
    prefix = "c3a_"
    config_cls = C3AConfig
    default_target_modules = TARGET_MODULES

    def _create_and_replace(
        self,
        config: C3AConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        block_size = block_size_for(config, current_key)
        if isinstance(target, C3ALinear):
            target.update_layer(adapter_name, block_size, config.init_weights)
            return
        if not isinstance(target, nn.Linear):
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by C3A; only "
                f"torch.nn.Linear is. Adjust target_modules."
            )
        layer = C3ALinear(target)
        try:
            layer.update_layer(adapter_name, block_size, config.init_weights)
        except ConfigError as exc:
            raise ConfigError(f"{current_key!r}: {exc}") from None
        setattr(parent, target_name, layer)
