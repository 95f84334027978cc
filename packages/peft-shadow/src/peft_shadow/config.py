"""`ShadowConfig`: Hugging Face PEFT's ShadowPEFT config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, LayerSelectionFields, TargetingFields

MIRROR = "mirror"
# Fields that only size an auto-built ("mirror") shadow backbone; a checkpoint defines its own.
MIRROR_ONLY_FIELDS = (
    "shadow_num_hidden_layers",
    "shadow_hidden_size",
    "shadow_num_attention_heads",
    "shadow_intermediate_size",
)


@dataclass
class ShadowConfig(LayerSelectionFields, ExcludeModulesField, TargetingFields):
    """ShadowPEFT: a small trainable shadow network runs beside a frozen decoder.

    A shadow backbone (by default a one-layer copy of the base architecture, `shadow_model="mirror"`)
    turns the input into a shadow state. Each targeted decoder block (whole blocks, not linear layers)
    gets `alpha · up(dropout(down(h − s)))` added to its input, and the shadow state then follows the
    block's output through a gated update. Nothing is a weight delta, so nothing can be merged.
    """

    peft_type: str = "SHADOW"
    r: int = field(default=8, metadata={"help": "Rank of the injection bottleneck down/up."})
    shadow_alpha: float = field(default=0.1, metadata={"help": "Strength of the correction added to a block's input."})
    shadow_dropout: float = field(default=0.2, metadata={"help": "Dropout on h − s before the bottleneck."})
    init_weights: bool = field(default=True, metadata={"help": "True: `up` starts at zero (a no-op injection)."})
    shadow_model: str = field(
        default=MIRROR, metadata={"help": "'mirror' (a small copy of the base architecture) or a model id / path."}
    )
    shadow_num_hidden_layers: Optional[int] = field(default=None, metadata={"help": "Mirror depth (None: 1)."})
    shadow_hidden_size: Optional[int] = field(default=None, metadata={"help": "Mirror width (None: the base's)."})
    shadow_num_attention_heads: Optional[int] = field(default=None, metadata={"help": "Mirror heads (None: the base's)."})
    shadow_intermediate_size: Optional[int] = field(default=None, metadata={"help": "Mirror MLP width (None: the base's)."})
    share_embeddings: bool = field(default=True, metadata={"help": "Feed the shadow backbone the base's embeddings."})
    update_hidden_size: Optional[int] = field(default=None, metadata={"help": "Width of the update MLPs (None: r)."})
    auxiliary_loss_weight: float = field(
        default=0.05, metadata={"help": "Weight of the shadow path's own loss added when labels are given (0: off)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()  # r > 0, shadow_dropout in [0, 1)
        name = type(self).__name__
        regex_targets = isinstance(self.target_modules, str)
        for layer_field in ("layers_to_transform", "layers_pattern"):
            if regex_targets and getattr(self, layer_field) is not None:
                raise ConfigError(f"{name}: {layer_field} cannot be used when target_modules is a str (a regex).")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: when layers_pattern is specified, layers_to_transform must also be specified.")
        for size_field in (*MIRROR_ONLY_FIELDS, "update_hidden_size"):
            value = getattr(self, size_field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ConfigError(f"{name}.{size_field} must be a positive integer or None, got {value!r}.")
        if self.auxiliary_loss_weight < 0:
            raise ConfigError(
                f"{name}.auxiliary_loss_weight must be >= 0 (0 turns the shadow loss off), got {self.auxiliary_loss_weight!r}."
            )
        if not isinstance(self.shadow_model, str) or not self.shadow_model:
            raise ConfigError(f"{name}.shadow_model must be 'mirror' or a model id / path, got {self.shadow_model!r}.")
        if self.shadow_model != MIRROR:
            configured = [f for f in MIRROR_ONLY_FIELDS if getattr(self, f) is not None]
            if configured:
                raise ConfigError(
                    f"{name}: shadow_model={self.shadow_model!r} is a checkpoint, which defines its own architecture; "
                    f"unset the mirror-only fields {', '.join(configured)}."
                )
