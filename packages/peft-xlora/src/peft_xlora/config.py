"""`XLoraConfig`: Hugging Face PEFT's X-LoRA config (0.21.2), field for field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

from peft_core import ConfigError, PeftConfig
from peft_core.tuners.tuner import validate_adapter_name


@dataclass
class XLoraConfig(PeftConfig):
    """X-LoRA: a mixture of LoRA experts. A small classifier reads the model's last hidden states (from a
    first, "scaling" pass) and gives every token, and optionally every adapted layer, a weight per
    expert; the second pass runs the experts with those weights.

    `adapters` maps expert names to LoRA adapters (local folders or Hub ids) loaded as the experts.
    """

    peft_type: str = "XLORA"
    hidden_size: Optional[int] = field(default=None, metadata={"help": "Hidden size of the base model (None: 4096, with a warning)."})
    adapters: Optional[dict[str, str]] = field(default=None, metadata={"help": "Expert name -> LoRA adapter path or Hub id."})
    enable_softmax: bool = field(default=True, metadata={"help": "Softmax over the experts of the classifier's output."})
    enable_softmax_topk: bool = field(default=False, metadata={"help": "Softmax over the top-k experts only (with top_k_lora)."})
    layerwise_scalings: bool = field(default=False, metadata={"help": "One weight per expert and layer (else shared by the layers)."})
    xlora_depth: int = field(default=1, metadata={"help": "Linear layers of the classifier."})
    xlora_size: int = field(default=2048, metadata={"help": "Hidden size of the classifier (xlora_depth > 1)."})
    xlora_dropout_p: float = field(default=0.2, metadata={"help": "Dropout in the classifier (xlora_depth > 1)."})
    use_trainable_adapters: bool = field(default=False, metadata={"help": "Train the experts too."})
    softmax_temperature: float = field(default=1.0, metadata={"help": "Softmax temperature (lower: sharper)."})
    top_k_lora: Optional[int] = field(default=None, metadata={"help": "Use only the k experts with the largest weights per token."})
    scaling_pass_value: float = field(default=0.0, metadata={"help": "Expert weight during the scaling pass."})
    global_scaling_weight: float = field(default=1.0, metadata={"help": "Factor on every expert's output."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.hidden_size is None:
            warnings.warn(
                "No value was provided for `hidden_size`. This will be set to 4096 by default, please ensure that this "
                "is correct.",
                UserWarning,
                stacklevel=3,
            )
            self.hidden_size = 4096
        if self.adapters is None:
            warnings.warn(
                "No value was provided for `adapters`. This will be set to empty, please ensure that this is correct.",
                UserWarning,
                stacklevel=3,
            )
            self.adapters = {}
        for key, path in self.adapters.items():
            if not isinstance(path, str) or not path:
                raise ConfigError(f"{name}.adapters[{key!r}] must be the path or Hub id of a LoRA adapter, got {path!r}.")
            try:
                validate_adapter_name(key)
            except ValueError as exc:
                raise ConfigError(f"{name}.adapters: expert name {key!r} is not usable: {exc}") from None
        for attr in ("hidden_size", "xlora_depth", "xlora_size"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}.{attr} must be a positive integer, got {value!r}.")
        if not 0 <= self.xlora_dropout_p < 1:
            raise ConfigError(f"{name}.xlora_dropout_p must be a probability in [0, 1), got {self.xlora_dropout_p!r}.")
        if not 0 < self.softmax_temperature < float("inf"):
            raise ConfigError(f"{name}.softmax_temperature must be a positive number, got {self.softmax_temperature!r}.")
        if self.top_k_lora is not None and self.top_k_lora < 1:
            raise ConfigError(f"{name}.top_k_lora must be at least 1 (or None for every expert), got {self.top_k_lora!r}.")
        if self.enable_softmax_topk and self.top_k_lora is None:
            warnings.warn("`enable_softmax_topk` enabled `top_k_lora` is not set", UserWarning, stacklevel=3)
        if self.enable_softmax_topk and self.enable_softmax:
            warnings.warn(
                "`enable_softmax_topk` and `enable_softmax` are both enabled. This will result in worse performance.",
                UserWarning,
                stacklevel=3,
            )
