"""`SupertuningConfig`: Hugging Face PEFT's Super-Tuning config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError
from peft_core.config_fields import TargetingFields


@dataclass
class SupertuningConfig(TargetingFields):
    """Super-Tuning: train a sparse set of weight entries chosen by magnitude (optionally plus a LoRA: "Supra").

    Per targeted `nn.Linear`, the `⌊(1 − sparsity) · out · in⌋` entries of largest (`select_top`) or
    smallest magnitude get a trained value added; with `r` set a LoRA `(lora_alpha / r) · B A` is added
    too. The positions are saved with the adapter unless `save_precomputed_indices=False` (then they are
    recomputed from the base weight on load, which must be the same weight).
    """

    peft_type: str = "SUPERTUNING"
    sparsity: float = field(default=0.99, metadata={"help": "Share of each weight NOT trained, in [0, 1)."})
    select_top: bool = field(default=True, metadata={"help": "Train the largest-magnitude entries (False: smallest)."})
    r: Optional[int] = field(default=None, metadata={"help": "Rank of the extra LoRA (Supra); None: sparse only."})
    lora_alpha: Optional[float] = field(default=None, metadata={"help": "LoRA scaling numerator (default 2 r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch's input."})
    init_weights: bool = field(default=True, metadata={"help": "True: zero values and LoRA B (no-op); False: random."})
    save_precomputed_indices: bool = field(default=True, metadata={"help": "Save the sparse positions with the adapter."})

    def __post_init__(self) -> None:
        super().__post_init__()  # r, when set, must be positive; lora_dropout in [0, 1)
        name = type(self).__name__
        if not 0.0 <= self.sparsity < 1.0:
            raise ConfigError(f"{name}.sparsity must be in [0.0, 1.0), got {self.sparsity!r}.")
        if self.r is None and self.lora_alpha is not None:
            raise ConfigError(f"{name}: lora_alpha is set but r is None; the LoRA part (Supra) needs an explicit r.")
        if self.r is not None and self.lora_alpha is None:
            self.lora_alpha = 2 * self.r
        if not self.save_precomputed_indices:
            warnings.warn(
                "save_precomputed_indices=False: the sparse positions are recomputed from the base weight's "
                "magnitudes when the adapter is loaded; the base model must be the one it was trained on (ties "
                "may resolve differently on other hardware).",
                UserWarning,
                stacklevel=3,
            )
