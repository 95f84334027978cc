"""`PsoftConfig`: Hugging Face PEFT's PSOFT config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields

_DEFAULT_NITER = 10
_DEFAULT_TERMS = 5


@dataclass
class PsoftConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """PSOFT: an r×r orthogonal transform inside the principal subspace of each weight.

    `A [r, in]` and `B [out, r]` come from the SVD of the frozen weight and stay frozen (they are
    rebuilt from the base weight, never saved); each layer trains `R` (the packed skew-symmetric
    generator of a Cayley rotation, or a free r×r matrix with `psoft_orth=False`) and optional scaling
    vectors on its two sides. The update is `ΔW = (psoft_alpha / r) · B (R - I) A`.

    - `ab_svd_init`: "psoft_init" (`A` = top right singular vectors, `B = U S / scaling`) or
      "pissa_init" (`√S` on both sides).
    - `psoft_svd`: "full" (`torch.linalg.svd`) or "lowrank" (`torch.svd_lowrank` with
      `psoft_svd_lowrank_niter` iterations, seeded with `random_seed`).
    - `use_cayley_neumann` / `num_cayley_neumann_terms` / `cayley_neumann_eps`: approximate the Cayley
      transform by a truncated series (optionally rescaling the generator to a Frobenius norm `eps`).
    """

    peft_type: str = "PSOFT"
    r: int = field(default=32, metadata={"help": "Size of the r×r transform (rank of the principal subspace)."})
    psoft_alpha: Union[int, float] = field(default=32, metadata={"help": "Scaling numerator: the update is scaled by psoft_alpha / r."})
    psoft_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    ab_svd_init: Literal["psoft_init", "pissa_init"] = field(default="psoft_init", metadata={"help": "How A and B split S."})
    psoft_svd: Literal["full", "lowrank"] = field(default="full", metadata={"help": "SVD backend: 'full' or 'lowrank'."})
    psoft_svd_lowrank_niter: int = field(default=_DEFAULT_NITER, metadata={"help": "Power iterations of svd_lowrank."})
    random_seed: int = field(default=0, metadata={"help": "Seed of svd_lowrank's random projection."})
    psoft_orth: bool = field(default=True, metadata={"help": "R is a Cayley rotation (True) or a free matrix (False)."})
    psoft_mag_b: bool = field(default=True, metadata={"help": "Train a scaling vector on R's output side."})
    psoft_mag_a: bool = field(default=True, metadata={"help": "Train a scaling vector on R's input side."})
    use_cayley_neumann: bool = field(default=False, metadata={"help": "Approximate the Cayley transform by a series."})
    num_cayley_neumann_terms: int = field(default=_DEFAULT_TERMS, metadata={"help": "Terms of the series."})
    cayley_neumann_eps: Optional[float] = field(default=None, metadata={"help": "Frobenius-norm bound of the generator."})
    init_weights: bool = field(default=True, metadata={"help": "True: R = I (no-op); False: a random R (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if isinstance(self.target_modules, str) and (self.layers_to_transform is not None or self.layers_pattern is not None):
            raise ConfigError(f"{name}: layers_to_transform / layers_pattern cannot be used with a regex target_modules.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if self.ab_svd_init not in ("psoft_init", "pissa_init"):
            raise ConfigError(f"{name}.ab_svd_init must be 'psoft_init' or 'pissa_init', got {self.ab_svd_init!r}.")
        if self.psoft_svd not in ("full", "lowrank"):
            raise ConfigError(f"{name}.psoft_svd must be 'full' or 'lowrank', got {self.psoft_svd!r}.")
        if isinstance(self.psoft_alpha, bool) or not isinstance(self.psoft_alpha, (int, float)):
            raise ConfigError(f"{name}.psoft_alpha must be a number, got {self.psoft_alpha!r}.")
        for flag in ("psoft_orth", "psoft_mag_a", "psoft_mag_b", "use_cayley_neumann", "init_weights", "fan_in_fan_out"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{name}.{flag} must be True or False, got {getattr(self, flag)!r}.")
        for count in ("psoft_svd_lowrank_niter", "num_cayley_neumann_terms", "random_seed"):
            value = getattr(self, count)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}.{count} must be an integer, got {value!r}.")
        if self.psoft_svd_lowrank_niter < 0:
            raise ConfigError(f"{name}.psoft_svd_lowrank_niter must be >= 0, got {self.psoft_svd_lowrank_niter}.")
        eps = self.cayley_neumann_eps
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))):
            raise ConfigError(f"{name}.cayley_neumann_eps must be a number in (0, 1) or None, got {eps!r}.")
        if self.use_cayley_neumann:
            if self.num_cayley_neumann_terms <= 0:
                raise ConfigError(f"{name}.num_cayley_neumann_terms must be positive, got {self.num_cayley_neumann_terms}.")
            if eps is not None and not 0.0 < eps < 1.0:
                raise ConfigError(f"{name}.cayley_neumann_eps must be in (0, 1) when set, got {eps}.")
        ignored = []
        if self.psoft_svd != "lowrank" and self.psoft_svd_lowrank_niter != _DEFAULT_NITER:
            ignored.append("psoft_svd_lowrank_niter (only used with psoft_svd='lowrank')")
        if not self.use_cayley_neumann and self.num_cayley_neumann_terms != _DEFAULT_TERMS:
            ignored.append("num_cayley_neumann_terms (only used with use_cayley_neumann=True)")
        if not self.use_cayley_neumann and eps is not None:
            ignored.append("cayley_neumann_eps (only used with use_cayley_neumann=True)")
        for what in ignored:
            warnings.warn(f"{name}: {what} is ignored.", UserWarning, stacklevel=3)
