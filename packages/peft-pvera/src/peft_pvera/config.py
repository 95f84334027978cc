"""`PveraConfig`: Hugging Face PEFT's PVeRA config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class PveraConfig(PeftConfig):
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
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    projection_prng_key: int = field(default=0, metadata={"help": "Seed of the CPU generator drawing pvera_A/pvera_B."})
    save_projection: bool = field(
        default=True, metadata={"help": "Save pvera_A/pvera_B with the adapter (else regenerate them from the key)."}
    )
    pvera_dropout: float = field(default=0.0, metadata={"help": "Dropout on the PVeRA branch input."})
    d_initial: float = field(default=0.1, metadata={"help": "Initial value of pvera_lambda_d."})
    fan_in_fan_out: bool = field(
        default=False, metadata={"help": "Weights stored (in, out), as in GPT-2's Conv1D; set automatically."}
    )
    bias: str = field(default="none", metadata={"help": "Biases to train and save: 'none', 'all' or 'pvera_only'."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    init_weights: bool = field(
        default=True, metadata={"help": "True: lambda_b = 0 (no-op), lambda_d = d_initial. False: random (tests)."}
    )
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices to adapt."})
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers') for layers_to_transform."}
    )
    sample_at_inference: bool = field(default=False, metadata={"help": "Sample in eval mode too (else use the mean)."})
    generator_seed: Optional[int] = field(default=None, metadata={"help": "Seed of the per-layer sampling generators."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'pvera_only', got {self.bias!r}.")
        for flag in ("save_projection", "init_weights", "sample_at_inference", "fan_in_fan_out"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{name}.{flag} must be True or False, got {getattr(self, flag)!r}.")
        for seed in ("projection_prng_key", "generator_seed"):
            value = getattr(self, seed)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{name}.{seed} must be an integer, got {value!r}.")
        if self.projection_prng_key is None:
            raise ConfigError(f"{name}.projection_prng_key must be an integer, got None.")
        if isinstance(self.d_initial, bool) or not isinstance(self.d_initial, (int, float)):
            raise ConfigError(f"{name}.d_initial must be a number, got {self.d_initial!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if not self.save_projection:
            warnings.warn(
                "PveraConfig.save_projection=False: pvera_A and pvera_B are not saved; they are regenerated from "
                "projection_prng_key with a CPU torch.Generator when the adapter is loaded, which may differ across "
                "platforms or torch versions. Keep save_projection=True to be safe.",
                UserWarning,
                stacklevel=3,
            )
