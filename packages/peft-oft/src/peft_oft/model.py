"""`OFTModel`: puts OFT layers on the targeted `nn.Linear` / `nn.Conv2d` / `nn.Embedding` modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.layer_classes import LayerClassTuner

from .config import OFTConfig
from .layer import Conv2d, Embedding, Linear


class OFTModel(LayerClassTuner):
    """Orthogonal fine-tuning (Qiu et al. 2023, https://huggingface.co/papers/2306.07280; Liu et al. 2024).

    The `bias` modes and default targets (Gemma 4's regex included) are peft-core's generic ones. A Conv2d's
    filter is rotated in place of the base forward, so OFT can't wrap another method's layer there.
    """

    prefix = "oft_"
    config_cls = OFTConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True
    method_label = "OFT"
    layer_classes = ((nn.Linear, Linear), (nn.Conv2d, Conv2d), (nn.Embedding, Embedding))
    no_nesting_types = (nn.Conv2d,)
