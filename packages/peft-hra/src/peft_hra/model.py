"""`HRAModel`: puts HRA layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core.tuners.layer_classes import LayerClassTuner

from .layer import HRAConv2d, HRALinear


class HRAModel(LayerClassTuner):
    """Householder reflection adaptation (Yuan et al. 2024, https://huggingface.co/papers/2405.17484).

    The reflected weight replaces the base forward, so HRA never wraps another method's layer.
    """

    prefix = "hra_"
    method_label = "HRA"
    layer_classes = ((nn.Linear, HRALinear), (nn.Conv2d, HRAConv2d))
    no_nesting_types = (nn.Linear, nn.Conv2d)
