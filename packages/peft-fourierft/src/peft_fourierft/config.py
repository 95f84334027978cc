"""`FourierFTConfig`: Hugging Face PEFT's FourierFT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field, check_positive_ints
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class FourierFTConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """Configuration of a FourierFT adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    FourierFT trains `n_frequency` spectral coefficients per layer at fixed random positions of the
    weight's 2-D spectrum: `ΔW = Re(ifft2(S)) * scaling`, `S` zero except at those positions.

    - `n_frequency`: number of coefficients per layer (at most `in * out`).
    - `scaling`: multiplies ΔW (like LoRA's alpha).
    - `random_loc_seed`: seed of the CPU generator choosing the positions (the same for every layer);
      positions are not saved, they are regenerated from the seed.
    - `n_frequency_pattern`: module-name pattern -> n_frequency, HF's older matching rule
      (`.*\\.<pattern>$`, or the exact full name).
    - `init_weights`: False (the default!) draws the spectrum from N(0, 1), which is **not** a no-op;
      True starts from zeros.
    - `fan_in_fan_out`, `bias` ('none', 'all', 'fourier_only'), `target_modules`, `exclude_modules`,
      `modules_to_save`, `layers_to_transform`, `layers_pattern`.
    """

    peft_type: str = "FOURIERFT"
    n_frequency: int = field(default=1000, metadata={"help": "Learnable spectral coefficients per layer."})
    scaling: float = field(default=150.0, metadata={"help": "Scale of ΔW."})
    random_loc_seed: Optional[int] = field(default=777, metadata={"help": "Seed of the frequency positions."})
    bias: str = bias_field("fourier_only")
    n_frequency_pattern: Optional[dict] = field(
        default_factory=dict, metadata={"help": "Module-name pattern -> n_frequency for matching modules."}
    )
    init_weights: bool = field(
        default=False, metadata={"help": "False (default): spectrum ~ N(0, 1), not a no-op. True: zeros."}
    )

    def __post_init__(self) -> None:
        if self.n_frequency_pattern is None:
            self.n_frequency_pattern = {}
        super().__post_init__()
        name = type(self).__name__
        check_positive_ints(self, "n_frequency")
        if isinstance(self.random_loc_seed, bool) or not isinstance(self.random_loc_seed, int):
            raise ConfigError(
                f"{name}.random_loc_seed must be an integer (it seeds the frequency positions), got "
                f"{self.random_loc_seed!r}."
            )
        check_bias_mode(self, "fourier_only")
        check_layer_selection(self)
