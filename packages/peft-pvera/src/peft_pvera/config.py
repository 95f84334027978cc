"""`PveraConfig`: Hugging Face PEFT's PVeRA config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, SeededProjectionFields, TargetingFields, bias_field, check_bools, check_numbers, warn_projection_not_saved
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class PveraConfig(LayerSelectionFields, FanInFanOutField, SeededProjectionFields, TargetingFields):
    """PVeRA: VeRA with a probabilistic bottleneck.

    Two frozen random matrices are shared by the adapted layers of an adapter: `pvera_A [2r, max_in]`
    and `pvera_B [max_out, r]`. Each layer trains `pvera_lambda_d [2r]` and `pvera_lambda_b [out]`.
    `lambda_d ⊙ (A x)` is split into a mean and a log-variance half; training samples
    `mean + ε·exp(logvar / 2)` (inference uses the mean unless `sample_at_inference`), and the sample
    goes through `B` scaled by `lambda_b`.

    - `r`, `projection_prng_key`, `save_projection`, `d_initial`, `pvera_dropout`, `fan_in_fan_out`,
      `bias` ('none', 'all', 'pvera_only'), `modules_to_save`, `init_weights`, `layers_to_transform`,
      `layers_pattern`, `target_modules`: as in VeRA.
    - `sample_at_inference`: sample in eval mode too (outputs are then random).
    - `generator_seed`: seed of each layer's own CPU generator for the samples (None: torch's global RNG).
    """

    peft_type: str = "PVERA"
    r: int = field(default=256, metadata={"help": "Rank of the shared random projections."})
    pvera_dropout: float = field(default=0.0, metadata={"help": "Dropout on the PVeRA branch input."})
    d_initial: float = field(default=0.1, metadata={"help": "Initial value of pvera_lambda_d."})
    bias: str = bias_field("pvera_only")
    init_weights: bool = field(
        default=True, metadata={"help": "True: lambda_b = 0 (no-op), lambda_d = d_initial. False: random (tests)."}
    )
    sample_at_inference: bool = field(default=False, metadata={"help": "Sample in eval mode too (else use the mean)."})
    generator_seed: Optional[int] = field(default=None, metadata={"help": "Seed of the per-layer sampling generators."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_bias_mode(self, "pvera_only")
        check_bools(self, "save_projection", "init_weights", "sample_at_inference", "fan_in_fan_out")
        for seed in ("projection_prng_key", "generator_seed"):
            value = getattr(self, seed)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{name}.{seed} must be an integer, got {value!r}.")
        if self.projection_prng_key is None:
            raise ConfigError(f"{name}.projection_prng_key must be an integer, got None.")
        check_numbers(self, "d_initial")
        check_layer_selection(self, regex_excludes_layers=False)
        if not self.save_projection:
            warn_projection_not_saved(self, "pvera_A and pvera_B")
