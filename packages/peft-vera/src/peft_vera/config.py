"""`VeraConfig`: Hugging Face PEFT's VeRA config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig


def check_bias_mode(cls_name: str, bias: object) -> None:
    """HF accepts 'none', 'all' and any '<name>_only' (targeted layers' biases)."""
    if not isinstance(bias, str) or not (bias in ("none", "all") or bias.endswith("_only")):
        raise ConfigError(f"{cls_name}.bias must be 'none', 'all' or 'vera_only', got {bias!r}.")


@dataclass
class VeraConfig(PeftConfig):
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
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes, a regex string, or 'all-linear'. None: per-model default."},
    )
    projection_prng_key: int = field(default=0, metadata={"help": "Seed of the CPU generator drawing vera_A/vera_B."})
    save_projection: bool = field(
        default=True, metadata={"help": "Save vera_A/vera_B with the adapter (else regenerate them from the key)."}
    )
    vera_dropout: float = field(default=0.0, metadata={"help": "Dropout on the VeRA branch input."})
    d_initial: float = field(default=0.1, metadata={"help": "Initial value of vera_lambda_d."})
    fan_in_fan_out: bool = field(
        default=False, metadata={"help": "Weights stored (in, out), as in GPT-2's Conv1D; set automatically."}
    )
    bias: str = field(default="none", metadata={"help": "Biases to train and save: 'none', 'all' or 'vera_only'."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )
    init_weights: bool = field(
        default=True, metadata={"help": "True: lambda_b = 0 (no-op), lambda_d = d_initial. False: random (tests)."}
    )
    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers', 'h') for layers_to_transform."}
    )

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules",)

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ConfigError(f"{name}.r must be a positive integer, got {self.r!r}.")
        if not 0.0 <= float(self.vera_dropout) < 1.0:
            raise ConfigError(f"{name}.vera_dropout must be a probability in [0, 1), got {self.vera_dropout!r}.")
        check_bias_mode(name, self.bias)
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if not self.save_projection:
            warnings.warn(
                "VeraConfig.save_projection=False: vera_A and vera_B are not saved; they are regenerated from "
                "projection_prng_key with a CPU torch.Generator when the adapter is loaded, which may not be "
                "reproducible across platforms or torch versions. Keep save_projection=True to be safe.",
                UserWarning,
                stacklevel=3,
            )
