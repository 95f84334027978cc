"""`ShiraConfig`: Hugging Face PEFT's SHiRA config (0.21.2), field for field.

`mask_fn` is not a field (it is never saved): it is set from `mask_type` after construction, and a
custom mask function is attached by assigning `config.mask_fn = my_fn` before `get_peft_model`.
Saved adapters carry their indices, so loading never needs the mask function.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

from peft_core import ConfigError
from peft_core.config_fields import FanInFanOutField, TargetingFields

from .masks import random_mask


@dataclass
class ShiraConfig(FanInFanOutField, TargetingFields):
    """SHiRA: train a sparse set of `r·(in + out)` entries of each adapted weight (LoRA's parameter count).

    - `r`: sets the number of trained entries per layer, `r·(in + out)`; the update is not low rank.
    - `mask_type`: `"random"` picks the entries with `random_mask`; any other name means a custom
      mask, given as `config.mask_fn = fn` (`fn(base_layer, r, **kwargs)` returns a 0/1 mask shaped
      like the weight with exactly `r·(in + out)` ones).
    - `random_seed`: seed of the CPU generator of `random_mask` (None: the generator's fixed default seed).
    - `init_weights`: True starts with zeros (a no-op); False with N(0, 1) values (tests).
    """

    peft_type: str = "SHIRA"
    r: int = field(default=32, metadata={"help": "Trained entries per layer: r * (in + out)."})
    mask_type: str = field(default="random", metadata={"help": "'random' or the name of a custom mask."})
    random_seed: Optional[int] = field(default=None, metadata={"help": "Seed of random_mask's generator."})
    init_weights: bool = field(default=True, metadata={"help": "True: zeros (no-op); False: N(0, 1) (tests)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.mask_type, str):
            raise ConfigError(f"ShiraConfig.mask_type must be a string ('random' or a custom name), got {self.mask_type!r}.")
        if self.random_seed is not None and (isinstance(self.random_seed, bool) or not isinstance(self.random_seed, int)):
            raise ConfigError(f"ShiraConfig.random_seed must be an integer or None, got {self.random_seed!r}.")
        self.mask_fn: Optional[Callable] = None
        if self.mask_type == "random":
            self.mask_fn = random_mask
        elif not self.inference_mode:
            warnings.warn(
                f"ShiraConfig.mask_type={self.mask_type!r} is not a built-in mask: set `config.mask_fn = your_mask_fn` "
                f"before creating the adapter (loading a saved adapter needs none: its indices are in the file).",
                UserWarning,
                stacklevel=3,
            )
