"""`BOFTConfig`: Hugging Face PEFT's BOFT config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from peft_core import ConfigError, PeftConfig
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field, check_bools, check_count_or_size
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection

from .files import saved_butterfly_factors


@dataclass
class BOFTConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
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
    boft_dropout: float = field(
        default=0.0, metadata={"help": "Multiplicative dropout: probability of replacing a block by the identity (training)."}
    )
    bias: str = bias_field("boft_only")
    init_weights: bool = field(
        default=True, metadata={"help": "True: identity rotation and unit scale. False: random (for tests)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_selection(self, regex_excludes_layers=False)
        check_bias_mode(self, "boft_only")
        check_count_or_size(self, "boft_block_num", "boft_block_size", example="boft_block_size=4")
        if self.boft_n_butterfly_factor < 1:
            raise ConfigError(
                f"BOFTConfig.boft_n_butterfly_factor must be a positive integer, got {self.boft_n_butterfly_factor}."
            )
        if self.boft_dropout < 0.0:
            raise ConfigError(f"BOFTConfig.boft_dropout must not be negative, got {self.boft_dropout}.")
        check_bools(self, "init_weights")

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
