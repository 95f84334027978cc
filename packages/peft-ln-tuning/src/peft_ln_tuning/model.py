"""`LNTuningModel`: wraps the targeted modules (normally the norms) in LN tuning layers."""

from __future__ import annotations

from typing import Sequence

from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner, TargetTypes

from .config import LNTuningConfig
from .defaults import TARGET_MODULES
from .layer import LNTuningLayer


class LNTuningModel(TargetLayerTuner):
    """LN tuning tuner; see `LNTuningConfig`.

    `merge_and_unload()` puts the active adapter's tuned copy in place of each module and `unload()`
    puts back what `base_layer` holds (the original, unless an adapter was merged); either way no
    wrapper is left in the returned model.
    """

    prefix = "ln_tuning_"
    config_cls = LNTuningConfig
    default_target_modules = TARGET_MODULES
    # any module type (normally a norm): the layer keeps a trainable copy of it per adapter
    target_layer = TargetLayer(LNTuningLayer, "LN tuning", TargetTypes(lambda module: True, "any module"), args=(), nests=False)

    def _check_merge_request(self, adapter_names: Sequence[str] | None) -> None:
        """Merging replaces modules, so only one adapter can be merged: refuse before any layer changes."""
        names = list(adapter_names) if adapter_names is not None else self.active_adapters
        if len(names) > 1:
            raise ValueError(
                f"LN tuning can merge only one adapter at a time (it replaces the modules), got {names}; "
                f"pass adapter_names=[one name] or set_adapter(one name) first."
            )
