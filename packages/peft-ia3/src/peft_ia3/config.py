"""`IA3Config`: Hugging Face PEFT's (IA)³ config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, TargetingFields


@dataclass
class IA3Config(FanInFanOutField, ExcludeModulesField, TargetingFields):
    """Configuration of an (IA)³ adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    (IA)³ learns one scaling vector per targeted layer. Layers listed in `feedforward_modules`
    scale their *inputs* (`ia3_l` of shape `[1, in]`); the other targeted layers scale their
    *outputs*, bias included (`[out, 1]`).

    - `target_modules`: list (exact names or dotted suffixes), regex string (full match),
      `"all-linear"`, or None for the per-model default.
    - `feedforward_modules`: a subset of `target_modules`; a list entry matches every module whose
      name *ends with* it (no dot boundary, as in HF), a string is a regex full match. None takes
      the per-model default (and is an error for models without one).
    - `exclude_modules`, `modules_to_save`, `fan_in_fan_out` (set automatically for GPT-2 `Conv1D`),
      `init_ia3_weights` (True: vectors start at 1, a no-op; False: random normal).
    """

    peft_type: str = "IA3"
    feedforward_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Targets whose inputs (not outputs) are scaled; list entries match by name ending."},
    )
    init_ia3_weights: bool = field(
        default=True, metadata={"help": "True: vectors start at 1 (no-op). False: random normal (for tests)."}
    )

    set_fields = ("target_modules", "exclude_modules", "feedforward_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        ff, targets = self.feedforward_modules, self.target_modules
        if isinstance(ff, set) and isinstance(targets, set) and not ff.issubset(targets):
            raise ConfigError(
                f"IA3Config.feedforward_modules must be a subset of target_modules; {sorted(ff - targets)} "
                f"are not in target_modules={sorted(targets)}. Add them to target_modules or drop them."
            )
