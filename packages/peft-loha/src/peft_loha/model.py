"""`LoHaModel`: puts `LoHaLayer`s into the targeted Linear / Conv1d / Conv2d modules."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.lycoris import LycorisTuner

from .config import LoHaConfig
from .layer import LoHaLayer


class LoHaModel(LycorisTuner):
    """The LoHa tuner. Parameter names start with `hada_` (Hugging Face PEFT's prefix for LoHa)."""

    prefix = "hada_"
    config_cls = LoHaConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True
    layer_cls = LoHaLayer
