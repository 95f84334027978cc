"""`FourierFTConfig`: Hugging Face PEFT's FourierFT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig
from peft_core.tuners.matching import check_layer_selection


def check_bias_mode(cls_name: str, bias: object) -> None:
    """HF accepts 'none', 'all' and any '<name>_only' (targeted layers' biases)."""
    if not isinstance(bias, str) or not (bias in ("none", "all") or bias.endswith("_only")):
        raise ConfigError(f"{cls_name}.bias must be 'none', 'all' or 'fourier_only', got {bias!r}.")


@dataclass
class FourierFTConfig(PeftConfig):
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
    fan_in_fan_out: bool = field(
        default=False, metadata={"help": "Weights stored (in, out), as in GPT-2's Conv1D; set automatically."}
    )
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes, a regex string, or 'all-linear'. None: per-model default."},
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )
    bias: str = field(default="none", metadata={"help": "Biases to train and save: 'none', 'all' or 'fourier_only'."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )
    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers', 'h') for layers_to_transform."}
    )
    n_frequency_pattern: Optional[dict] = field(
        default_factory=dict, metadata={"help": "Module-name pattern -> n_frequency for matching modules."}
    )
    init_weights: bool = field(
        default=False, metadata={"help": "False (default): spectrum ~ N(0, 1), not a no-op. True: zeros."}
    )

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        if self.n_frequency_pattern is None:
            self.n_frequency_pattern = {}
        super().__post_init__()
        name = type(self).__name__
        if isinstance(self.n_frequency, bool) or not isinstance(self.n_frequency, int) or self.n_frequency <= 0:
            raise ConfigError(f"{name}.n_frequency must be a positive integer, got {self.n_frequency!r}.")
        if isinstance(self.random_loc_seed, bool) or not isinstance(self.random_loc_seed, int):
            raise ConfigError(
                f"{name}.random_loc_seed must be an integer (it seeds the frequency positions), got "
                f"{self.random_loc_seed!r}."
            )
        check_bias_mode(name, self.bias)
        check_layer_selection(self)
