"""`OFTConfig`: Hugging Face PEFT's OFT config (0.21.2), field for field.

Every field HF writes to `adapter_config.json` exists here with HF's name and default, so a config
round-trips between the two libraries. Loading also applies HF's compatibility rules: a config without
`oft_block_size` (written before PEFT 0.14) is refused, and a Cayley-Neumann config written before
PEFT 0.18 (whose series differed slightly) gets HF's warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

from peft_core import ConfigError, PeftConfig
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field, check_bools, check_count_or_size
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection

from .legacy import check_not_legacy_files

# HF changed the Neumann series of the Cayley transform in 0.18.0 (see `rotation.cayley_neumann`).
_NEUMANN_CHANGED_IN = (0, 18, 0)


@dataclass
class OFTConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """Configuration of an OFT adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    Give exactly one of `r` (number of diagonal blocks) and `oft_block_size` (their size); the other
    must be 0, because `r * oft_block_size` equals the layer's input size (`in_features`, or
    `in_channels * kh * kw` for Conv2d). A value that does not divide the input size is adjusted per
    layer to the nearest divisor, with a warning (HF's rule).
    """

    peft_type: str = "OFT"
    r: int = field(default=0, metadata={"help": "Number of OFT blocks per layer (0: derive it from oft_block_size)."})
    oft_block_size: int = field(
        default=32, metadata={"help": "Size of each OFT block (0: derive it from r). r * oft_block_size = in_features."}
    )
    module_dropout: float = field(
        default=0.0,
        metadata={"help": "Multiplicative block dropout. Hugging Face PEFT 0.21.2 never applies it; neither do we."},
    )
    bias: str = bias_field("oft_only")
    init_weights: bool = field(
        default=True, metadata={"help": "True: zero skew parameters (identity rotation). False: N(0, 0.1) (for tests)."}
    )
    coft: bool = field(default=False, metadata={"help": "Constrained OFT: project the skew parameters into an eps-ball."})
    eps: float = field(default=6e-5, metadata={"help": "COFT radius (only with coft=True)."})
    block_share: bool = field(default=False, metadata={"help": "One rotation block shared by all blocks of a layer."})
    use_cayley_neumann: bool = field(
        default=True, metadata={"help": "Approximate the Cayley transform with a Neumann series (default) or solve exactly."}
    )
    num_cayley_neumann_terms: int = field(default=5, metadata={"help": "Number of Neumann series terms."})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_selection(self, regex_excludes_layers=False)
        check_bias_mode(self, "oft_only")
        check_count_or_size(self, "r", "oft_block_size", example="oft_block_size=32, r=0")
        check_bools(self, "init_weights")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], _source: str | None = None) -> PeftConfig:
        """Build from a loaded `adapter_config.json`, refusing adapters of the pre-0.16 OFT formats."""
        where = f" ({_source})" if _source else ""
        if "oft_block_size" not in data:
            raise ConfigError(
                f"This OFT adapter config{where} has no 'oft_block_size': it was written by Hugging Face PEFT < 0.14, "
                f"whose OFT parameterisation (and weight keys) differ from today's. It can't be loaded here (nor by "
                f"PEFT >= 0.14); load it with peft<=0.13 or train a new OFT adapter."
            )
        check_not_legacy_files(_source)
        if data.get("use_cayley_neumann", False) and _version_tuple(data.get("peft_version")) < _NEUMANN_CHANGED_IN:
            warnings.warn(
                f"This OFT adapter{where} was saved before PEFT 0.18 with use_cayley_neumann=True. PEFT 0.18 changed the "
                f"Cayley-Neumann series slightly, and this package (like PEFT >= 0.18) computes the new one, so "
                f"outputs differ a little from the ones it was trained with. Retrain it, or load it with peft<=0.17.",
                UserWarning,
                stacklevel=2,
            )
        return super().from_dict(data, _source=_source)


def _version_tuple(value: object) -> tuple[int, ...]:
    """`'0.21.2@peft-core-0.1.0'` -> (0, 21, 2); a missing or unparsable version counts as very old (HF's rule)."""
    if not isinstance(value, str):
        return (0, 0, 0)
    parts: list[int] = []
    for piece in value.partition("@")[0].split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) if parts else (0, 0, 0)
