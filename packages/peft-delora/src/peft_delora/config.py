"""`DeloraConfig`: Hugging Face PEFT's DeLoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields
from peft_core.tuners.matching import check_layer_selection


@dataclass
class DeloraConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """DeLoRA: a low-rank update whose strength is decoupled from its direction.

    `ΔW = (λ / r) · Σᵢ bᵢ aᵢᵀ / (‖aᵢ‖ ‖bᵢ‖)`, scaled per input column by the frozen base weight's
    column norms: each rank-1 term is normalised, so `λ` bounds the update's size.

    - `r`: rank; `delora_lambda`: initial `λ` (trained); `rank_pattern` / `lambda_pattern`: per-module
      overrides (a key is a regex matched at the end of the module name, on a dot boundary).
    - `module_dropout`: dropout on the adapter branch's input.
    - `init_weights`: True: `B = 0` (a no-op start); False: `A` and `B` random.
    - `bias`: `"none"`, `"all"` or `"delora_only"`.
    """

    peft_type: str = "DELORA"
    r: int = field(default=8, metadata={"help": "Rank of the update."})
    delora_lambda: Union[int, float] = field(default=15, metadata={"help": "Initial bound on the update's size."})
    module_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    bias: Literal["none", "all", "delora_only"] = field(default="none", metadata={"help": "Base biases to train."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: A and B random."})
    rank_pattern: Optional[dict] = field(default_factory=dict, metadata={"help": "Per-module ranks."})
    lambda_pattern: Optional[dict] = field(default_factory=dict, metadata={"help": "Per-module initial lambdas."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_layer_selection(self)
        if self.bias not in ("none", "all", "delora_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'delora_only', got {self.bias!r}.")
        for key, rank in (self.rank_pattern or {}).items():
            if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
                raise ConfigError(f"{name}.rank_pattern[{key!r}] must be a positive integer, got {rank!r}.")
