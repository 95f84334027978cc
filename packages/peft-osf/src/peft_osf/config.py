"""`OSFConfig`: Hugging Face PEFT's OSF config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import TargetingFields


def check_rank_value(value: object, where: str) -> None:
    """An effective rank is a positive integer, or a float: in (0, 1] a fraction of the smaller weight
    dimension, above 1 a count (truncated, as Hugging Face PEFT does)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(
            f"{where} must be a positive integer or a fraction in (0, 1] of the smaller weight dimension, got "
            f"{value!r}. Use e.g. 8 or 0.5."
        )


@dataclass
class OSFConfig(TargetingFields):
    """Orthogonal Subspace Fine-tuning: each targeted weight `W = U S Vᵀ` (its SVD) keeps its top
    `effective_rank` singular directions frozen and trains only the rest, `U_low`, `S_low`, `V_low`,
    with gradients kept orthogonal to the frozen directions (continual learning without forgetting).

    - `effective_rank`: frozen rank per target; `None` is half the smaller weight dimension; a float in
      (0, 1] is a fraction of it. The trainable rank is `min(out, in) - effective_rank`.
    - `rank_pattern`: regex (searched in the module name) -> effective rank, first match wins.
    - `init_weights`: `True` starts from the decomposition itself (a no-op); `False` draws the trainable
      parts at random (tests).
    - `target_svd_config`: accepted and ignored, as in Hugging Face PEFT.
    """

    peft_type: str = "OSF"
    effective_rank: Optional[Union[int, float]] = field(
        default=None, metadata={"help": "Frozen top rank per target (None: half the smaller dimension; (0, 1]: a fraction)."}
    )
    rank_pattern: Optional[dict[str, Union[int, float]]] = field(
        default=None, metadata={"help": "Regex (searched in the module name) -> effective rank; first match wins."}
    )
    init_weights: Optional[bool] = field(
        default=True, metadata={"help": "True: start from the decomposition (no-op); False: random trainable parts."}
    )
    target_svd_config: Optional[dict[str, int]] = field(
        default=None, metadata={"help": "Accepted for compatibility and ignored (as in Hugging Face PEFT)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.effective_rank is not None:
            check_rank_value(self.effective_rank, f"{name}.effective_rank")
        for pattern, value in (self.rank_pattern or {}).items():
            check_rank_value(value, f"{name}.rank_pattern[{pattern!r}]")
            _compile(pattern, f"{name}.rank_pattern")


def _compile(pattern: str, where: str) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where} key {pattern!r} is not a valid regular expression: {exc}.") from None
