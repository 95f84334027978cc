"""`GraloraConfig`: Hugging Face PEFT's GraLoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field, check_positive_ints
from peft_core.tuners.bias import check_bias_mode


@dataclass
class GraloraConfig(LayerSelectionFields, FanInFanOutField, TargetingFields):
    """GraLoRA: granular low-rank adaptation in a `k × k` grid of blocks.

    The weight is split into `k × k` blocks; block `(j, i)` gets its own rank-`r/k` update, so the
    total is still `r·(in + out)` parameters but the update can reach rank `r·k`. With `hybrid_r > 0`
    an ordinary LoRA of rank `hybrid_r` is added beside the grid. Both are scaled by `alpha / (r + hybrid_r)`.

    - `r`: total rank of the grid (divisible by `gralora_k`); `gralora_k`: blocks per side (the
      input and output sizes must be divisible by it).
    - `init_weights`: True: `B = 0` (a no-op start); False: `A` and `B` random (tests).
    - `bias`: `"none"`, `"all"` or `"gralora_only"`.
    """

    peft_type: str = "GRALORA"
    r: int = field(default=32, metadata={"help": "Rank of the block grid (divisible by gralora_k)."})
    hybrid_r: int = field(default=0, metadata={"help": "Rank of an extra plain LoRA beside the grid (0: none)."})
    alpha: Union[int, float] = field(default=64, metadata={"help": "Scaling numerator: alpha / (r + hybrid_r)."})
    gralora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    gralora_k: int = field(default=2, metadata={"help": "Number of blocks per side of the grid."})
    bias: str = bias_field("gralora_only")
    layers_pattern: Optional[str] = field(default=None, metadata={"help": "Layer list name (Hugging Face PEFT takes one here)."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: random (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_positive_ints(self, "gralora_k")
        if self.r % self.gralora_k:
            raise ConfigError(f"{name}.r={self.r} must be divisible by gralora_k={self.gralora_k}.")
        if isinstance(self.hybrid_r, bool) or not isinstance(self.hybrid_r, int) or self.hybrid_r < 0:
            raise ConfigError(f"{name}.hybrid_r must be a non-negative integer, got {self.hybrid_r!r}.")
        check_bias_mode(self, "gralora_only")
