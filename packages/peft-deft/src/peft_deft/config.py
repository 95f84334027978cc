"""`DeftConfig`: Hugging Face PEFT's DEFT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class DeftConfig(PeftConfig):
    """DEFT: replace a learned rank-`r` subspace of each targeted weight with new content.

    With `P [out, r]` and `R [r, in]` trained, the adapted weight is `W' = (I − P_proj) W + Q_P (s R)`:
    `"relu"` decomposition: `Q_P = P`, `P_proj = P relu(P)ᵀ`; `"qr"`: `Q_P = qr(P)`, `P_proj = Q_P Q_Pᵀ`.
    `s = alpha / r` when `alpha` is set, else 1. `para=True` (PaRa) drops the injection: `W' = (I − P_proj) W`.

    - `init_weights`: True: `R = relu(P)ᵀ W / s`, so a fresh adapter leaves `W` unchanged; False: `R ~ N(0, 0.02 · init_scale)`.
    - `r` is capped at the layer's output size.
    - `bias`: `"none"`, `"all"` or `"deft_only"`.
    """

    peft_type: str = "DEFT"
    r: int = field(default=8, metadata={"help": "Rank of the projection P and the injection R."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules never adapted."})
    decomposition_method: Literal["relu", "qr"] = field(
        default="relu", metadata={"help": "'relu': P_proj = P relu(P)^T; 'qr': orthogonal Q Q^T from qr(P)."}
    )
    init_scale: float = field(default=1.0, metadata={"help": "Scales the std of a random R (init_weights=False)."})
    alpha: Optional[int] = field(default=None, metadata={"help": "Injection scaling alpha / r (None: 1)."})
    para: bool = field(default=False, metadata={"help": "PaRa: subspace removal only, no injection R."})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out) (GPT-2 Conv1D); set automatically."})
    deft_dropout: float = field(default=0.0, metadata={"help": "Dropout on the injection branch's input."})
    init_weights: bool = field(default=True, metadata={"help": "True: R chosen so the start is a no-op; False: random R."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer list name."})
    bias: str = field(default="none", metadata={"help": "'none', 'all' or 'deft_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.decomposition_method not in ("relu", "qr"):
            raise ConfigError(f"{name}.decomposition_method must be 'relu' or 'qr', got {self.decomposition_method!r}.")
        with_regex = [f for f in ("layers_to_transform", "layers_pattern") if getattr(self, f) is not None]
        if isinstance(self.target_modules, str) and with_regex:
            raise ConfigError(f"{name}: {with_regex[0]} cannot be used when target_modules is a str (a regex).")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if self.bias not in ("none", "all", "deft_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'deft_only', got {self.bias!r}.")
        if not self.init_weights and self.init_scale < 0:  # the std of the random R
            raise ConfigError(f"{name}.init_scale must be >= 0 for a random start (init_weights=False), got {self.init_scale!r}.")
