"""`DeftConfig`: Hugging Face PEFT's DEFT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field


@dataclass
class DeftConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
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
    decomposition_method: Literal["relu", "qr"] = field(
        default="relu", metadata={"help": "'relu': P_proj = P relu(P)^T; 'qr': orthogonal Q Q^T from qr(P)."}
    )
    init_scale: float = field(default=1.0, metadata={"help": "Scales the std of a random R (init_weights=False)."})
    alpha: Optional[int] = field(default=None, metadata={"help": "Injection scaling alpha / r (None: 1)."})
    para: bool = field(default=False, metadata={"help": "PaRa: subspace removal only, no injection R."})
    deft_dropout: float = field(default=0.0, metadata={"help": "Dropout on the injection branch's input."})
    init_weights: bool = field(default=True, metadata={"help": "True: R chosen so the start is a no-op; False: random R."})
    bias: str = bias_field("deft_only")

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
