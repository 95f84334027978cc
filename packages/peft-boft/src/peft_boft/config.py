"""`BOFTConfig`: Hugging Face PEFT's BOFT config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from peft_core import ConfigError, PeftConfig
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection

from .files import saved_butterfly_factors


@dataclass
class BOFTConfig(PeftConfig):
    """Configuration of a BOFT adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    Give exactly one of `boft_block_size` and `boft_block_num` (the other must be 0):
    `boft_block_size * boft_block_num` equals the layer's input size (`in_features`, or
    `in_channels * kh * kw` for Conv2d). `boft_n_butterfly_factor = m` multiplies `m` butterfly
    factors; `m = 1` is plain block-diagonal OFT with the exact Cayley transform.
    """

    peft_type: str = "BOFT"
    boft_block_size: int = field(default=4, metadata={"help": "Size of each orthogonal block (0: derive it from boft_block_num)."})
    boft_block_num: int = field(default=0, metadata={"help": "Number of blocks per layer (0: derive it from boft_block_size)."})
    boft_n_butterfly_factor: int = field(
        default=1, metadata={"help": "Number of butterfly factors; 1 = block-diagonal OFT."}
    )
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes, a regex string, or 'all-linear'. None: per-model default."},
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )
    boft_dropout: float = field(
        default=0.0, metadata={"help": "Multiplicative dropout: probability of replacing a block by the identity (training)."}
    )
    fan_in_fan_out: bool = field(default=False, metadata={"help": "Weights stored (in, out); reset to False for nn.Linear."})
    bias: str = field(default="none", metadata={"help": "Which biases to train and save: 'none', 'all' or 'boft_only'."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )
    init_weights: bool = field(
        default=True, metadata={"help": "True: identity rotation and unit scale. False: random (for tests)."}
    )
    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers', 'h') for layers_to_transform."}
    )

    set_fields = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_selection(self, regex_excludes_layers=False)
        check_bias_mode(self, "boft_only")
        if self.boft_block_size == 0 and self.boft_block_num == 0:
            raise ConfigError(
                "BOFTConfig needs boft_block_size or boft_block_num to be non-zero (both are 0); set e.g. boft_block_size=4."
            )
        if (self.boft_block_size != 0) == (self.boft_block_num != 0):
            raise ConfigError(
                f"BOFTConfig takes either boft_block_size ({self.boft_block_size}) or boft_block_num "
                f"({self.boft_block_num}), not both, because boft_block_size * boft_block_num = in_features; set the "
                f"other one to 0."
            )
        if self.boft_block_size < 0 or self.boft_block_num < 0:
            raise ConfigError("BOFTConfig boft_block_size and boft_block_num must not be negative.")
        if self.boft_n_butterfly_factor < 1:
            raise ConfigError(
                f"BOFTConfig.boft_n_butterfly_factor must be a positive integer, got {self.boft_n_butterfly_factor}."
            )
        if self.boft_dropout < 0.0:
            raise ConfigError(f"BOFTConfig.boft_dropout must not be negative, got {self.boft_dropout}.")
        if not isinstance(self.init_weights, bool):
            raise ConfigError(f"BOFTConfig.init_weights must be True or False, got {self.init_weights!r}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], _source: str | None = None) -> PeftConfig:
        """Build from a loaded `adapter_config.json`; the saved `boft_R` decides the number of butterfly factors."""
        in_file = saved_butterfly_factors(_source)
        declared = data.get("boft_n_butterfly_factor", 1)
        if in_file is not None and in_file != declared:
            warnings.warn(
                f"The BOFT adapter at {_source} declares boft_n_butterfly_factor={declared}, but its boft_R tensors hold "
                f"{in_file} factor(s): Hugging Face PEFT without its CUDA extension silently trains a single factor. "
                f"Loading it with boft_n_butterfly_factor={in_file}, which is what it computes.",
                UserWarning,
                stacklevel=2,
            )
            data = {**data, "boft_n_butterfly_factor": in_file}
        return super().from_dict(data, _source=_source)
