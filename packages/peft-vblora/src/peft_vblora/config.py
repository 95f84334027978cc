"""`VBLoRAConfig`: Hugging Face PEFT's VB-LoRA config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, bias_field


@dataclass
class VBLoRAConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """VB-LoRA: low-rank factors assembled from a vector bank shared by every adapted layer.

    Each factor is cut into sub-vectors of `vector_length`; every sub-vector is a softmax-weighted
    sum of the `topk` bank vectors its logits (over all `num_vectors`) rank highest. Layers train
    only their logits; the bank (`num_vectors x vector_length`) is shared and trained too. Both
    `in_features` and `out_features` of every target must be multiples of `vector_length`.
    """

    peft_type: str = "VBLORA"
    r: int = field(default=4, metadata={"help": "Rank of the update."})
    num_vectors: int = field(default=256, metadata={"help": "Number of vectors in the shared bank."})
    vector_length: int = field(default=256, metadata={"help": "Length of each bank vector; divides in/out features."})
    topk: int = field(default=2, metadata={"help": "Bank vectors mixed per sub-vector (the largest logits)."})
    save_only_topk_weights: bool = field(
        default=False,
        metadata={"help": "Save only the top-k indices and weights of the logits (smaller; inference/merging only)."},
    )
    vblora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter branch's input."})
    bias: str = bias_field("vblora_only")
    init_vector_bank_bound: float = field(
        default=0.02, metadata={"help": "The bank starts uniform in [-bound, bound] (not all zeros: no gradient)."}
    )
    init_logits_std: float = field(default=0.1, metadata={"help": "Standard deviation of the normal initial logits."})

    def __post_init__(self) -> None:
        super().__post_init__()  # r > 0, 0 <= vblora_dropout < 1
        name = type(self).__name__
        for attr in ("num_vectors", "vector_length", "topk"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}.{attr} must be a positive integer, got {value!r}.")
        if self.topk > self.num_vectors:
            raise ConfigError(
                f"{name}.topk={self.topk} exceeds num_vectors={self.num_vectors}: each sub-vector mixes topk of the "
                f"bank's vectors. Use topk <= num_vectors (2 works well)."
            )
        if not isinstance(self.bias, str) or self.bias not in ("none", "all", "vblora_only"):
            raise ConfigError(f"{name}.bias must be 'none', 'all' or 'vblora_only', got {self.bias!r}.")
        if self.init_vector_bank_bound < 0:
            raise ConfigError(
                f"{name}.init_vector_bank_bound must be >= 0, got {self.init_vector_bank_bound!r} (e.g. 0.02)."
            )
        if self.init_logits_std < 0:
            raise ConfigError(f"{name}.init_logits_std must be >= 0, got {self.init_logits_std!r} (e.g. 0.1).")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(f"{name}: layers_pattern is only used together with layers_to_transform; set both.")
