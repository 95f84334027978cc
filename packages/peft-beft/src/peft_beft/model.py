"""`BeftModel`: puts a `BeftLinear` around every targeted `nn.Linear`.

Merging folds each vector into its layer's bias; when an adapter to merge sits on a layer without
one, the whole merge is refused before any weight changes (Hugging Face PEFT fails part-way).
"""

from __future__ import annotations

import warnings
from typing import Sequence

from torch import nn

from peft_core import UnsupportedOperationError
from peft_core.tuners.target_layer import TargetLayer, TargetLayerTuner

from .config import BeftConfig
from .defaults import TARGET_MODULES
from .layer import BeftLinear


class BeftModel(TargetLayerTuner):
    prefix = "beft_"
    config_cls = BeftConfig
    default_target_modules = TARGET_MODULES
    target_layer = TargetLayer(BeftLinear, "BEFT", args=("init_weights",))

    def new_layer(self, target: nn.Module, config: BeftConfig, current_key: str) -> BeftLinear:  # type: ignore[override]
        if target.bias is None:
            warnings.warn(
                f"{current_key!r} has no bias term: the BEFT adapter on it can't be merged into the base layer.",
                UserWarning,
                stacklevel=5,
            )
        return BeftLinear(target)

    def _check_merge_request(self, adapter_names: Sequence[str] | None) -> None:
        """An adapter to merge on a layer without a bias refuses the whole merge before any weight changes."""
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
