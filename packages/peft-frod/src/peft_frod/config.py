"""`FrodConfig`: Hugging Face PEFT's FRoD config (0.21.2), field for field (no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, LayerSelectionFields, SeededProjectionFields, TargetingFields, bias_field, check_bools, check_ints, check_numbers
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class FrodConfig(LayerSelectionFields, FanInFanOutField, SeededProjectionFields, TargetingFields):
    """FRoD: each adapted weight is rebuilt as `W' = U (S + diag(λ)) Vᵀ`.

    `V [in, in]` is a basis shared by the layers of one role (e.g. every `self_attn.q_proj`), built
    from their stacked weights; `U` and `λ` solve `W = U diag(λ) Vᵀ` at creation. Each layer trains
    `λ` (`frod_lambda_l [in]`) and the values of a sparse off-diagonal `S` (`frod_lambda_s_values [nnz]`)
    whose positions are drawn once per role.

    - `projection_prng_key`: seed of the sparse positions; `save_projection`: save `V` and the
      positions (else rebuild them from the base weights and the key on load).
    - `sparse_rate`: share of the `in²` off-diagonal positions that train.
    - `regularization_alpha`: ridge term of the shared-basis construction.
    - `progressbar`: show progress while the bases are built.
    - `runtime_offload_base_weight`: HF moves unused base weights to the CPU; accepted and ignored here.
    """

    peft_type: str = "FROD"
    frod_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    bias: str = bias_field("frod_only")
    init_weights: bool = field(default=True, metadata={"help": "True: S = 0 (W' = W, a no-op); False: random S and λ (tests)."})
    sparse_rate: float = field(default=0.01, metadata={"help": "Share of off-diagonal S entries that train."})
    regularization_alpha: float = field(default=1e-3, metadata={"help": "Ridge term of the shared basis."})
    progressbar: bool = field(default=True, metadata={"help": "Show progress while building the bases."})
    runtime_offload_base_weight: bool = field(default=False, metadata={"help": "HF's CPU offload of base weights (ignored)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_ints(self, "projection_prng_key")
        check_numbers(self, "sparse_rate", "regularization_alpha")
        if not 0 <= self.sparse_rate <= 1:
            raise ConfigError(f"{name}.sparse_rate must be between 0 and 1, got {self.sparse_rate}.")
        check_bools(self, "save_projection", "init_weights", "progressbar", "runtime_offload_base_weight", "fan_in_fan_out")
        check_bias_mode(self, "frod_only")
        check_layer_selection(self, regex_excludes_layers=False)
