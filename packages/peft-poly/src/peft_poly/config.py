"""`PolyConfig`: Hugging Face PEFT's Poly config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, TargetingFields


@dataclass
class PolyConfig(ExcludeModulesField, TargetingFields):
    """Polytropon (Poly) and Multi-Head Routing (MHR): each adapted layer holds `n_skills` LoRA modules
    ("skills"); a learned router picks, per task, a soft mix of them. With `n_splits > 1` (MHR) the
    input and output dimensions are cut into `n_splits` heads, each with its own mix.

    Every forward call needs `task_ids` (one task index per row, each below `n_tasks`), except with
    `n_tasks=1`, where every row is task 0.
    """

    peft_type: str = "POLY"
    r: int = field(default=8, metadata={"help": "Rank of each skill's LoRA."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (a no-op start); False: random B (tests)."})
    poly_type: Literal["poly"] = field(default="poly", metadata={"help": "Router variant; only 'poly' exists."})
    n_tasks: int = field(default=1, metadata={"help": "Number of tasks (rows of the router's logits)."})
    n_skills: int = field(default=4, metadata={"help": "Number of skills (LoRA modules) per layer."})
    n_splits: int = field(default=1, metadata={"help": "Heads of the input/output dims (> 1: Multi-Head Routing)."})

    def __post_init__(self) -> None:
        super().__post_init__()  # r > 0
        name = type(self).__name__
        if self.poly_type != "poly":
            raise ConfigError(f"{name}.poly_type must be 'poly' (the only router Poly has), got {self.poly_type!r}.")
        for attr in ("n_tasks", "n_skills", "n_splits"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}.{attr} must be a positive integer, got {value!r}.")
