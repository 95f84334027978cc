"""`TinyLoraConfig`: Hugging Face PEFT's TinyLoRA config (0.21.2), field for field (no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field, check_bools, check_ints, check_numbers, check_positive_ints, warn_projection_not_saved
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class TinyLoraConfig(LayerSelectionFields, FanInFanOutField, TargetingFields):
    """TinyLoRA: LoRA-XS with its r×r core replaced by a tiny trained vector.

    Each adapted layer keeps the frozen truncated SVD of its weight, `A = √S Vh [r, in]` and
    `B = U √S [out, r]`, and fixed random tensors `P [u, r, r]`; the update is `B R A` with
    `R = Σ_i v_i P_i`. The trained vectors `v [u]` live on the tuner and may be shared by groups of
    layers (`weight_tying`).

    - `r`: SVD rank (clipped to the layer's size); `u`: length of each trained vector.
    - `weight_tying`: 0.0 gives every layer its own `v`, 1.0 one `v` for all, in between groups of
      consecutive layers.
    - `projection_seed`: `P` of the i-th targeted layer is drawn from `projection_seed + i`;
      `save_projection`: save `P` (else regenerate it on load).
    - `init_weights`: True: `v = 0` (a no-op); "uniform" (and, here, False): `U(-init_v_bound, init_v_bound)`.
    """

    peft_type: str = "TINYLORA"
    r: int = field(default=2, metadata={"help": "Rank of the frozen truncated SVD."})
    u: int = field(default=64, metadata={"help": "Length of each trained vector v."})
    weight_tying: float = field(default=0.0, metadata={"help": "0.0: a v per layer ... 1.0: one v for all layers."})
    projection_seed: int = field(default=42, metadata={"help": "Base seed of the projection tensors P."})
    save_projection: bool = field(default=True, metadata={"help": "Save P with the adapter (else regenerate it)."})
    init_v_bound: float = field(default=0.02, metadata={"help": "Bound of the uniform init of v."})
    tinylora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch."})
    bias: str = bias_field("tinylora_only")
    init_weights: Union[bool, str] = field(default=True, metadata={"help": "True: v = 0 (no-op); 'uniform': random v."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_ints(self, "projection_seed")
        check_positive_ints(self, "u")
        check_numbers(self, "weight_tying", "init_v_bound")
        if not 0.0 <= self.weight_tying <= 1.0:
            raise ConfigError(f"{name}.weight_tying must be between 0.0 and 1.0, got {self.weight_tying}.")
        if not (isinstance(self.init_weights, bool) or self.init_weights == "uniform"):
            raise ConfigError(f"{name}.init_weights must be True, False or 'uniform', got {self.init_weights!r}.")
        check_bias_mode(self, "tinylora_only")
        check_bools(self, "save_projection")
        check_layer_selection(self, regex_excludes_layers=False)
        if not self.save_projection:
            warn_projection_not_saved(self, "the projection tensors P", seed_field="projection_seed")
