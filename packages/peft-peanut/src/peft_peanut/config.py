"""`PeanutConfig`: Hugging Face PEFT's PEANuT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional, Union

from peft_core import ConfigError, PeftConfig

from .activations import unknown_activation


@dataclass
class PeanutConfig(PeftConfig):
    """PEANuT: a weight-aware update computed by a small network from the frozen weight itself.

    `ΔW = scaling · (B(f(…f(W A ᵀ)…)))ᵀ`: `A` maps each input column of `W` (its `out` entries) to `r`,
    then `depth` encoder and `depth` decoder layers (`r → r`, with residual connections between
    matching encoder and decoder depths), then `B` maps back to `out`; `f` is `act_fn`.

    - `r`: hidden width; `depth`: encoder/decoder layers per side (0: only `A` and `B`).
    - `act_fn`: an activation name of transformers' `ACT2FN` (`"relu"`, `"gelu"`, `"silu"` ...).
    - `scaling`: multiplies the update; `init_weights`: True: `B = 0` (a no-op start); False: random `B`.
    """

    peft_type: str = "PEANUT"
    r: int = field(default=32, metadata={"help": "Hidden width of the adapter network."})
    depth: int = field(default=0, metadata={"help": "Encoder and decoder layers per side (besides A and B)."})
    act_fn: str = field(default="relu", metadata={"help": "Activation (a transformers ACT2FN name)."})
    scaling: float = field(default=1.0, metadata={"help": "Multiplies the update."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names/suffixes (list), a regex (str), 'all-linear', or None (default)."}
    )
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules never adapted."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Modules trained in full and saved."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer list name."})
    init_weights: bool = field(default=True, metadata={"help": "True: B = 0 (no-op); False: random B."})

    set_fields: ClassVar[tuple[str, ...]] = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        if self.depth < 0:
            raise ConfigError(f"{name}.depth must be a non-negative integer, got {self.depth!r}.")
        problem = unknown_activation(self.act_fn)
        if problem:
            raise ConfigError(f"{name}: {problem}")
