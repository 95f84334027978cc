"""`LoKrConfig`: Hugging Face PEFT's LoKr config (0.21.2), field for field.

The shared LyCORIS-family fields come from `peft_core.tuners.lycoris.LycorisConfig`; LoKr adds
`decompose_both`, `decompose_factor` and `rank_dropout_scale`, and its `init_weights` also
accepts `"lycoris"`. Every field is implemented, so nothing is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from peft_core import ConfigError
from peft_core.tuners.lycoris import LycorisConfig


@dataclass
class LoKrConfig(LycorisConfig):
    """Configuration of a LoKr adapter: ΔW = kron(w1, w2) · alpha / r.

    Same fields and defaults as Hugging Face PEFT 0.21.2's `LoKrConfig`; see the package README for
    the options table and for which tensors a layer gets.
    """

    peft_type: str = field(default="LOKR", metadata={"help": "Always 'LOKR'."})
    decompose_both: bool = field(
        default=False, metadata={"help": "Also factorise the left Kronecker factor w1 into w1_a @ w1_b."}
    )
    decompose_factor: int = field(
        default=-1, metadata={"help": "Target size of the smaller factor of each dimension; -1: as square as possible."}
    )
    rank_dropout_scale: bool = field(
        default=False, metadata={"help": "Rescale the rows kept by rank dropout by 1 / mean(mask)."}
    )
    init_weights: Union[bool, Literal["lycoris"]] = field(
        default=True,
        metadata={"help": "True: w1 = 0 (no-op); 'lycoris': w2 = 0 (no-op, LyCORIS style); False: random."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not (isinstance(self.init_weights, bool) or self.init_weights == "lycoris"):
            raise ConfigError(f"{name}.init_weights must be True, False or 'lycoris', got {self.init_weights!r}.")
        if isinstance(self.decompose_factor, bool) or not isinstance(self.decompose_factor, int):
            raise ConfigError(f"{name}.decompose_factor must be an integer (-1: automatic), got {self.decompose_factor!r}.")
