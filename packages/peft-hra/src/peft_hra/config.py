"""`HRAConfig`: Hugging Face PEFT's HRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields, bias_field
from peft_core.tuners.bias import check_bias_mode
from peft_core.tuners.matching import check_layer_selection


@dataclass
class HRAConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
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
    init_weights: bool = field(
        default=True,
        metadata={"help": "True: paired identical vectors (H = I when r is even). False: Kaiming-uniform vectors."},
    )
    bias: str = bias_field("hra_only")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_layer_selection(self)
        check_bias_mode(self, "hra_only")
