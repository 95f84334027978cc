"""`VeraConfig`: Hugging Face PEFT's VeRA config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, SeededProjectionFields, TargetingFields, bias_field, check_positive_ints, warn_projection_not_saved
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class VeraConfig(LayerSelectionFields, FanInFanOutField, SeededProjectionFields, TargetingFields):
    """Configuration of a VeRA adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    VeRA freezes two random matrices `vera_A [r, max_in]` and `vera_B [max_out, r]` shared by all
    adapted layers and trains two vectors per layer: `vera_lambda_d [r]` and `vera_lambda_b [out]`.

    - `r`: rank of the shared projections (VeRA uses much larger ranks than LoRA).
    - `projection_prng_key`: seed of the CPU generator that draws the projections.
    - `save_projection`: save the projections with the adapter (default) or regenerate them from
      the key on load.
    - `d_initial`: initial value of `vera_lambda_d` (`vera_lambda_b` starts at 0, a no-op).
    - `vera_dropout`, `fan_in_fan_out`, `bias` ('none', 'all', 'vera_only'), `modules_to_save`,
      `init_weights`, `layers_to_transform`, `layers_pattern`, `target_modules`.
    """

    peft_type: str = "VERA"
    r: int = field(default=256, metadata={"help": "Rank of the shared random projections."})
    vera_dropout: float = field(default=0.0, metadata={"help": "Dropout on the VeRA branch input."})
    d_initial: float = field(default=0.1, metadata={"help": "Initial value of vera_lambda_d."})
    bias: str = bias_field("vera_only")
    init_weights: bool = field(
        default=True, metadata={"help": "True: lambda_b = 0 (no-op), lambda_d = d_initial. False: random (tests)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_positive_ints(self, "r")
        if not 0.0 <= float(self.vera_dropout) < 1.0:
            raise ConfigError(f"{name}.vera_dropout must be a probability in [0, 1), got {self.vera_dropout!r}.")
        check_bias_mode(self, "vera_only")
        check_layer_selection(self, regex_excludes_layers=False)
        if not self.save_projection:
            warn_projection_not_saved(self, "vera_A and vera_B")
