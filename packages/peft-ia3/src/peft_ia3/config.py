"""`IA3Config`: Hugging Face PEFT's (IA)³ config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class IA3Config(PeftConfig):
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
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes, a regex string, or 'all-linear'. None: per-model default."},
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )
    feedforward_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Targets whose inputs (not outputs) are scaled; list entries match by name ending."},
    )
    fan_in_fan_out: bool = field(
        default=False, metadata={"help": "Weights stored (in, out), as in GPT-2's Conv1D; set automatically."}
    )
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )
    init_ia3_weights: bool = field(
        default=True, metadata={"help": "True: vectors start at 1 (no-op). False: random normal (for tests)."}
    )

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules", "exclude_modules", "feedforward_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        ff, targets = self.feedforward_modules, self.target_modules
        if isinstance(ff, set) and isinstance(targets, set) and not ff.issubset(targets):
            raise ConfigError(
                f"IA3Config.feedforward_modules must be a subset of target_modules; {sorted(ff - targets)} "
                f"are not in target_modules={sorted(targets)}. Add them to target_modules or drop them."
            )
