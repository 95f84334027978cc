"""`MissConfig`: Hugging Face PEFT's MiSS config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields, bias_field
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection

INIT_VARIANTS = (True, False, "bat", "mini")


@dataclass
class MissConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """Configuration of a MiSS adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    `init_weights` picks the variant: `True` (balanced, default; `miss_block [r, out]`, starts at 0),
    `"bat"` (block-wise, `miss_block [out/r, r, r]`; `r` must divide in and out), `"mini"` (`miss_block
    [r, mini_r]` repeated along the outputs; `mini_r` must divide out), `False` (default shape, random).
    """

    peft_type: str = "MISS"
    r: int = field(default=64, metadata={"help": "Shard size along in_features (best even)."})
    miss_dropout: float = field(default=0.0, metadata={"help": "Dropout on the input of the MiSS branch."})
    mini_r: int = field(default=1, metadata={"help": "Shard size along out_features for init_weights='mini'."})
    init_weights: Union[bool, Literal["bat", "mini"]] = field(
        default=True, metadata={"help": "Variant: True (balanced), 'bat', 'mini', or False (random, for tests)."}
    )
    bias: str = bias_field("MiSS_only")
    layers_pattern: Optional[str] = field(default=None, metadata={"help": "Layer list name (Hugging Face PEFT takes one here)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_selection(self, pattern_needs_layers=False)
        check_bias_mode(self, "MiSS_only")
        if not any(self.init_weights is v or (isinstance(v, str) and self.init_weights == v) for v in INIT_VARIANTS):
            raise ConfigError(f"MissConfig.init_weights must be True, False, 'bat' or 'mini', got {self.init_weights!r}.")
        if not 0.0 <= self.miss_dropout <= 1.0:
            raise ConfigError(f"MissConfig.miss_dropout must be in [0, 1], got {self.miss_dropout}.")
