"""`LNTuningModel`: wraps the targeted modules (normally the norms) in LN tuning layers."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from peft_core import BaseTuner

from .config import LNTuningConfig
from .defaults import TARGET_MODULES
from .layer import LNTuningLayer


class LNTuningModel(BaseTuner):
    """LN tuning tuner; see `LNTuningConfig`.

    `merge_and_unload()` puts the active adapter's tuned copy in place of each module and `unload()`
    puts back what `base_layer` holds (the original, unless an adapter was merged); either way no
    wrapper is left in the returned model.
    """

    prefix = "ln_tuning_"
    config_cls = LNTuningConfig
    default_target_modules = TARGET_MODULES

    def _create_and_replace(
        self,
        config: LNTuningConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, LNTuningLayer):
            target.update_layer(adapter_name)
            return
        layer = LNTuningLayer(target)
        layer.update_layer(adapter_name)
        setattr(parent, target_name, layer)

    # Merging replaces modules, so only one adapter can be merged: refuse before any layer changes.
    def merge_adapter(self, adapter_names: Sequence[str] | None = None, safe_merge: bool = False) -> None:
        self._check_single(adapter_names)
        super().merge_adapter(adapter_names=adapter_names, safe_merge=safe_merge)

    def merge_and_unload(
        self, progressbar: bool = False, safe_merge: bool = False, adapter_names: Sequence[str] | None = None
    ) -> nn.Module:
        self._check_single(adapter_names)
        return super().merge_and_unload(progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names)

    def _check_single(self, adapter_names: Sequence[str] | None) -> None:
        names = list(adapter_names) if adapter_names is not None else self.active_adapters
        if len(names) > 1:
            raise ValueError(
                f"LN tuning can merge only one adapter at a time (it replaces the modules), got {names}; "
                f"pass adapter_names=[one name] or set_adapter(one name) first."
            )
