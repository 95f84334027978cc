"""`LoHaModel`: puts `LoHaLayer`s into the targeted Linear / Conv1d / Conv2d modules."""

from __future__ import annotations

from peft_core.tuners.lycoris import LycorisTuner

from .layer import LoHaLayer


class LoHaModel(LycorisTuner):
    """The LoHa tuner. Parameter names start with `hada_` (Hugging Face PEFT's prefix for LoHa)."""

    prefix = "hada_"
    layer_cls = LoHaLayer
