"""`HRAModel`: puts HRA layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.layer_classes import LayerClassTuner

from .config import HRAConfig
from .layer import HRAConv2d, HRALinear


class HRAModel(LayerClassTuner):
    """Householder reflection adaptation (Yuan et al. 2024, https://huggingface.co/papers/2405.17484).

    The reflected weight replaces the base forward, so HRA never wraps another method's layer.
    """

    prefix = "hra_"
    config_cls = HRAConfig
    default_target_modules = QUERY_VALUE_TARGETS
    method_label = "HRA"
    layer_classes = ((nn.Linear, HRALinear), (nn.Conv2d, HRAConv2d))
    no_nesting_types = (nn.Linear, nn.Conv2d)
