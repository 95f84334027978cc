"""`FrodConfig`: Hugging Face PEFT's FRoD config (0.21.2), field for field (no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class FrodConfig(PeftConfig):
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
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    projection_prng_key: int = field(default=0, metadata={"help": "Seed of the sparse S positions."})
    save_projection: bool = field(default=True, metadata={"help": "Save V and the S positions with the adapter."})
    frod_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out) (GPT-2 Conv1D); set automatically."})
    bias: str = field(default="none", metadata={"help": "Biases to train and save: 'none', 'all' or 'frod_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_weights: bool = field(default=True, metadata={"help": "True: S = 0 (W' = W, a no-op); False: random S and λ (tests)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices to adapt."})
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers') for layers_to_transform."}
    )
    sparse_rate: float = field(default=0.01, metadata={"help": "Share of off-diagonal S entries that train."})
    regularization_alpha: float = field(default=1e-3, metadata={"help": "Ridge term of the shared basis."})
    progressbar: bool = field(default=True, metadata={"help": "Show progress while building the bases."})
    runtime_offload_base_weight: bool = field(default=False, metadata={"help": "HF's CPU offload of base weights (ignored)."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if isinstance(self.projection_prng_key, bool) or not isinstance(self.projection_prng_key, int):
            raise ConfigError(f"{name}.projection_prng_key must be an integer, got {self.projection_prng_key!r}.")
        for number in ("sparse_rate", "regularization_alpha"):
            value = getattr(self, number)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name}.{number} must be a number, got {value!r}.")
        if not 0 <= self.sparse_rate <= 1:
            raise ConfigError(f"{name}.sparse_rate must be between 0 and 1, got {self.sparse_rate}.")
        for flag in ("save_projection", "init_weights", "progressbar", "runtime_offload_base_weight", "fan_in_fan_out"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{name}.{flag} must be True or False, got {getattr(self, flag)!r}.")
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'frod_only', got {self.bias!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
