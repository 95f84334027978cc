"""`HRAConfig`: Hugging Face PEFT's HRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import PeftConfig
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


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
        check_layer_selection(self)
        check_bias_mode(self, "hra_only")
