"""`C3AConfig`: Hugging Face PEFT's C3A config (0.21.2), field for field (it has no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import LayerSelectionFields, TargetingFields, bias_field
from peft_core.tuners.matching import check_layer_selection

INIT_CHOICES = (True, False, "gaussian", "kaiming_uniform", "xavier_uniform")


@dataclass
class C3AConfig(LayerSelectionFields, TargetingFields):
    """C3A: the weight update is block-circulant, applied as circular convolutions through FFTs.

    - `block_size`: size of each circulant block; must divide the input and output size of every
      adapted layer (the gcd of those sizes is a safe choice). Larger blocks, fewer parameters.
    - `block_size_pattern`: per-module overrides, `{"layers.0.self_attn.k_proj": 16}` (a key `p`
      matches module names ending in `.p`, or the exact full name).
    - `init_weights`: `True` zeros the kernels (a no-op start); `"xavier_uniform"` (default) or
      `False`, `"kaiming_uniform"` and `"gaussian"` draw random kernels.
    - `bias`: `"none"`, `"all"` or `"c3a_only"` (train and save base-model biases).
    """

    peft_type: str = "C3A"
    block_size: int = field(default=256, metadata={"help": "Circulant block size; divides in and out features."})
    bias: str = bias_field("c3a_only")
    block_size_pattern: Optional[dict] = field(default_factory=dict, metadata={"help": "Per-module block sizes."})
    init_weights: Optional[Union[bool, Literal["gaussian", "kaiming_uniform", "xavier_uniform"]]] = field(
        default="xavier_uniform", metadata={"help": "True: zeros (no-op); xavier_uniform/False, kaiming_uniform, gaussian."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        check_layer_selection(self, pattern_needs_layers=False)
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'c3a_only', got {self.bias!r}.")
        if self.init_weights not in INIT_CHOICES or self.init_weights is None:
            raise ConfigError(
                f"{name}.init_weights must be True, False, 'gaussian', 'kaiming_uniform' or 'xavier_uniform', "
                f"got {self.init_weights!r}."
            )
        for size in [self.block_size, *(self.block_size_pattern or {}).values()]:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ConfigError(f"{name}: block sizes must be positive integers, got {size!r}.")
