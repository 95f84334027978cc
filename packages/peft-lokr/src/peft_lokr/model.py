"""`LoKrModel`: puts `LoKrLayer`s into the targeted Linear / Conv1d / Conv2d modules."""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.lycoris import LycorisTuner

from .config import LoKrConfig
from .layer import LoKrLayer


class LoKrModel(LycorisTuner):
    """The LoKr tuner. Parameter names start with `lokr_`."""

    prefix = "lokr_"
    config_cls = LoKrConfig
    default_target_modules = QUERY_VALUE_TARGETS
    is_mixed_compatible = True
    layer_cls = LoKrLayer
