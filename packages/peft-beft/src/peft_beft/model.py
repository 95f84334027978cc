"""`BeftModel`: puts a `BeftLinear` around every targeted `nn.Linear`.

Merging folds each vector into its layer's bias; when an adapter to merge sits on a layer without
one, the whole merge is refused before any weight changes (Hugging Face PEFT fails part-way).
"""

from __future__ import annotations

import warnings
from typing import Sequence

from torch import nn

from peft_core import BaseTuner, UnsupportedOperationError
from peft_core.errors import unsupported_target

from .config import BeftConfig
from .defaults import TARGET_MODULES
from .layer import BeftLinear


class BeftModel(BaseTuner):
    prefix = "beft_"
    config_cls = BeftConfig
    default_target_modules = TARGET_MODULES

    def _create_and_replace(
        self, config: BeftConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, BeftLinear):
            target.update_layer(adapter_name, config.init_weights)
            return
        if not isinstance(self.wrapped_base(target, current_key), nn.Linear):
            raise unsupported_target(current_key, target, "BEFT", "torch.nn.Linear only")
        if target.bias is None:
            warnings.warn(
                f"{current_key!r} has no bias term: the BEFT adapter on it can't be merged into the base layer.",
                UserWarning,
                stacklevel=4,
            )
        layer = BeftLinear(target)
        layer.update_layer(adapter_name, config.init_weights)
        setattr(parent, target_name, layer)

    def _check_mergeable(self, adapter_names: Sequence[str] | None) -> None:
        blocked = []
        for layer in self.tuner_layers():
            if not isinstance(layer, BeftLinear) or layer.can_merge():
                continue
            names = layer.active_adapters if adapter_names is None else list(adapter_names)
            if any(name in layer.beft_bias and name not in layer.merged_adapters for name in names):
                blocked.append(layer)
        if blocked:
            raise UnsupportedOperationError(
                f"Can't merge BEFT: {len(blocked)} adapted layer(s) have no bias to fold the vector into "
                f"(e.g. a {type(blocked[0].get_base_layer()).__name__} with bias=False). Nothing was merged; "
                f"keep the adapter unmerged (it adds its vector at run time)."
            )

    def merge_adapter(self, adapter_names: Sequence[str] | None = None, safe_merge: bool = False) -> None:
        self._check_mergeable(adapter_names)
        super().merge_adapter(adapter_names=adapter_names, safe_merge=safe_merge)

    def merge_and_unload(
        self, progressbar: bool = False, safe_merge: bool = False, adapter_names: Sequence[str] | None = None
    ) -> nn.Module:
        self._check_mergeable(adapter_names)
        return super().merge_and_unload(progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names)
