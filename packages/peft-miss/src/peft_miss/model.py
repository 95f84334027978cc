"""`MiSSModel`: puts MiSS layers on the targeted `nn.Linear` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.layer_classes import LayerClassTuner

from .config import MissConfig
from .layer import MissLinear


class MissModel(LayerClassTuner):
    """MiSS: shard sharing (Kang et al. 2024, https://huggingface.co/papers/2409.15371), formerly Bone.

    The `bat` variant computes with the transformed weight, so MiSS never wraps another method's layer.
    """

    prefix = "miss_"
    config_cls = MissConfig
    default_target_modules = QUERY_VALUE_TARGETS
    method_label = "MiSS"
    layer_classes = ((nn.Linear, MissLinear),)
    no_nesting_types = (nn.Linear,)
