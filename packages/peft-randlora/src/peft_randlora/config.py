"""`RandLoraConfig`: Hugging Face PEFT's RandLoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, SeededProjectionFields, TargetingFields, bias_field, check_ints, warn_projection_not_saved
from peft_core.tuners.bias import check_bias_mode


@dataclass
class RandLoraConfig(LayerSelectionFields, FanInFanOutField, SeededProjectionFields, TargetingFields):
    """RandLoRA: full-rank updates from frozen random bases shared by every adapted layer.

    Two frozen random bases per adapter, `randlora_A [r, 1, min_dim]` and `randlora_B [max_dim,
    n, r]` (`n = ceil(min_dim / r)`, sized for the largest adapted layer), are shared by all layers;
    each layer trains only the scales `randlora_lambda [r, n]` and `randlora_gamma [n, min(in, out)]`.
    The `n` rank-`r` bases together reach full rank. Smaller `r` means more trainable parameters.

    - `projection_prng_key`: seed of the CPU generator drawing the bases.
    - `save_projection`: save the bases with the adapter (default) or regenerate them from the key.
    - `sparse` / `very_sparse`: ternary (−1, 0, 1) bases with zero probability 2/3, or 1 − 1/√min_dim.
    - `randlora_alpha`: scaling numerator (`alpha / r`), typically 20·r.
    - `bias`: `"none"`, `"all"` or `"randlora_only"`.
    """

    peft_type: str = "RANDLORA"
    r: int = field(default=32, metadata={"help": "Rank of each random basis (fewer bases when larger)."})
    sparse: bool = field(default=False, metadata={"help": "Ternary sparse bases (zero with probability 2/3)."})
    very_sparse: bool = field(default=False, metadata={"help": "Very sparse ternary bases (1 - 1/sqrt(min_dim) zeros)."})
    randlora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    randlora_alpha: Union[int, float] = field(default=640, metadata={"help": "Scaling numerator: alpha / r."})
    bias: str = bias_field("randlora_only")
    layers_pattern: Optional[str] = field(default=None, metadata={"help": "Layer list name (Hugging Face PEFT takes one here)."})
    init_weights: bool = field(default=True, metadata={"help": "True: lambda = 0 (no-op); False: random (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bias_mode(self, "randlora_only")
        check_ints(self, "projection_prng_key")
        if not self.save_projection:
            warn_projection_not_saved(self, "randlora_A and randlora_B")
