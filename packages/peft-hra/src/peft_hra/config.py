"""`HRAConfig`: Hugging Face PEFT's HRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError, PeftConfig


@dataclass
class HRAConfig(PeftConfig):
    """Configuration of an HRA adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    `r` Householder reflections act on the input side of each adapted weight. Keep `r` even: the default
    initialisation pairs identical reflections so the adapter starts as the identity, which an odd `r`
    can't do (HF warns and initialises randomly).
    """

    peft_type: str = "HRA"
    r: int = field(default=8, metadata={"help": "Number of Householder reflections per layer (best even)."})
    apply_GS: bool = field(
        default=False, metadata={"help": "Orthonormalise the reflection vectors (Gram-Schmidt): H = I - 2 U Uᵀ."}
    )
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to adapt: names/suffixes, a regex string, or 'all-linear'. None: per-model default."},
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )
    init_weights: bool = field(
        default=True,
        metadata={"help": "True: paired identical vectors (H = I when r is even). False: Kaiming-uniform vectors."},
    )
    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Name of the layer list (e.g. 'layers', 'h') for layers_to_transform."}
    )
    bias: str = field(default="none", metadata={"help": "Which biases to train and save: 'none', 'all' or 'hra_only'."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )

    set_fields = ("target_modules", "exclude_modules")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ConfigError("HRAConfig: `layers_to_transform` cannot be used when `target_modules` is a str (a regex).")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ConfigError("HRAConfig: `layers_pattern` cannot be used when `target_modules` is a str (a regex).")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError("HRAConfig.layers_pattern needs layers_to_transform; set both or neither.")
        if not isinstance(self.bias, str) or not (self.bias in ("none", "all") or self.bias.endswith("_only")):
            raise ConfigError(f"HRAConfig.bias must be 'none', 'all' or 'hra_only', got {self.bias!r}.")
