"""`BOFTModel`: puts BOFT layers on the targeted `nn.Linear` / `nn.Conv2d` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.layer_classes import LayerClassTuner

from .config import BOFTConfig
from .layer import Conv2d, Linear


class BOFTModel(LayerClassTuner):
    """Butterfly orthogonal fine-tuning (Liu et al. 2024, https://huggingface.co/papers/2311.06243).

    The `bias` modes and default targets (Gemma 4's regex included) are peft-core's generic ones.
    """

    prefix = "boft_"
    config_cls = BOFTConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True
    method_label = "BOFT"
    layer_classes = ((nn.Linear, Linear), (nn.Conv2d, Conv2d))
    no_nesting_types = (nn.Conv2d,)
