"""`LoKrModel`: puts `LoKrLayer`s into the targeted Linear / Conv1d / Conv2d modules."""

from __future__ import annotations

from peft_core.tuners.lycoris import LycorisTuner

from .layer import LoKrLayer


class LoKrModel(LycorisTuner):
    """The LoKr tuner. Parameter names start with `lokr_`."""

    prefix = "lokr_"
    layer_cls = LoKrLayer
