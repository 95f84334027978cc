"""`LinearLikeLayer`: the base of adapter layers around an `nn.Linear` or transformers' `Conv1D`.

Such layers all took the config's (reconciled) `fan_in_fan_out` flag, which says whether the base
weight is stored `[in, out]` (`Conv1D`), and read their sizes off the base layer.
"""

from __future__ import annotations

from torch import nn

from .layer import BaseTunerLayer


class LinearLikeLayer(BaseTunerLayer):
    """A `BaseTunerLayer` whose base is an `nn.Linear` or a `Conv1D`: `in_features` / `out_features` come from
    it (`features_from_base`) and `fan_in_fan_out` is kept for merging (a `Conv1D` weight is `[in, out]`)."""

    features_from_base = True

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool = False) -> None:
        super().__init__(base_layer)
        self.__dict__["fan_in_fan_out"] = fan_in_fan_out

