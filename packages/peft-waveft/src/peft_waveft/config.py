"""`WaveFTConfig`: Hugging Face PEFT's WaveFT config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field
from peft_core.tuners.matching import check_layer_selection

from .families import DIFFERS_FROM_HF, FAMILIES


@dataclass
class WaveFTConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """WaveFT: train a few wavelet coefficients of each weight update.

    `n_frequency` coefficients at fixed random positions (seeded by `random_loc_seed`) of a 2-D
    wavelet-coefficient grid are trained; the update is the one-level inverse wavelet transform of
    that grid (`use_idwt=True`) or the sparse grid itself (`use_idwt=False`), times `scaling`.

    - `wavelet_family`: `db1`–`db38`, `sym2`–`sym20`, `coif1`–`coif17` (filters from PyWavelets).
    - `n_frequency_pattern`: per-module counts (regex keys matched at the end of the name on a dot
      boundary); `proportional_parameters`: share `n_frequency × layers` in proportion to `in·out`.
    - `init_weights`: True: zeros (a no-op start); False: N(0, 0.01²).
    - `bias`: `"none"`, `"all"` or `"waveft_only"`.
    """

    peft_type: str = "WAVEFT"
    n_frequency: int = field(default=2592, metadata={"help": "Trained wavelet coefficients per layer."})
    scaling: float = field(default=25.0, metadata={"help": "Factor applied to the reconstructed update."})
    wavelet_family: str = field(default="db1", metadata={"help": "db1-db38, sym2-sym20 or coif1-coif17."})
    use_idwt: bool = field(default=True, metadata={"help": "Reconstruct with the inverse DWT (else use the grid)."})
    random_loc_seed: int = field(default=777, metadata={"help": "Seed of the coefficients' positions."})
    bias: str = bias_field("waveft_only")
    n_frequency_pattern: Optional[dict] = field(default_factory=dict, metadata={"help": "Per-module n_frequency."})
    proportional_parameters: bool = field(default=False, metadata={"help": "Share the budget by layer size."})
    init_weights: bool = field(default=True, metadata={"help": "True: zeros (no-op); False: N(0, 0.01^2)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_layer_selection(self)
        if self.wavelet_family not in FAMILIES:
            raise ConfigError(
                f"{name}.wavelet_family={self.wavelet_family!r} is not supported; use db1-db38, sym2-sym20 or coif1-coif17."
            )
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'waveft_only', got {self.bias!r}.")
        for key, count in [("n_frequency", self.n_frequency), *(self.n_frequency_pattern or {}).items()]:
            if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
                raise ConfigError(f"{name}: n_frequency values must be positive integers, got {key!r}: {count!r}.")
        if self.wavelet_family in DIFFERS_FROM_HF:
            warnings.warn(
                f"WaveFT wavelet_family={self.wavelet_family!r}: Hugging Face PEFT 0.21.2 has no correct filter for it "
                f"(its coif4 table is not the published wavelet; coif5 and families beyond db10/sym10 fail there). "
                f"This package uses PyWavelets' filters, so such adapters give different outputs in HF PEFT.",
                UserWarning,
                stacklevel=3,
            )
