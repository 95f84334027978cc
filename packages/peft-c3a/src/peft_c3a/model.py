"""`C3AModel`: puts a `C3ALinear` around every targeted `nn.Linear`."""

from __future__ import annotations

import re

from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import C3AConfig
from .defaults import TARGET_MODULES
from .layer import C3ALinear


def block_size_for(config: C3AConfig, key: str) -> int:
    """HF's older pattern rule (as for FourierFT): the first key `p` with `re.match(".*\\.p$", key)`,
    else an entry equal to the full name, else `block_size`."""
    patterns = config.block_size_pattern or {}
    hit = next((p for p in patterns if re.match(rf".*\.{p}$", key)), key)
    return patterns.get(hit, config.block_size)


class C3AModel(TargetLayerTuner):
    prefix = "c3a_"
    config_cls = C3AConfig
    default_target_modules = TARGET_MODULES
    target_layer = TargetLayer(C3ALinear, "C3A", nests=False)

    def layer_args(self, config: C3AConfig, adapter_name: str, current_key: str) -> tuple:  # type: ignore[override]
        return (block_size_for(config, current_key), config.init_weights)
