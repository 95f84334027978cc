"""`AdaLoraConfig`: Hugging Face PEFT's AdaLoRA config (0.21.2), built on peft-lora's `LoraConfig`.

AdaLoRA keeps every LoRA field (so the saved `adapter_config.json` has the same keys as HF's) and
adds the budget schedule: `init_r` ranks per adapted matrix at the start, pruned by importance down
to an average of `target_r` between step `tinit` and step `total_step - tfinal`.

Fields of `LoraConfig` that AdaLoRA's math does not use (`r`, `use_rslora`, `alpha_pattern`,
`lora_bias`) are accepted and ignored, exactly as HF ignores them; `rank_pattern` is not LoRA's
regex -> rank map but the pruning result: module path + `.lora_E` -> a bool mask of length `init_r`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional

import torch

from peft_core import ConfigError
from peft_lora import LoraConfig


@dataclass
class AdaLoraConfig(LoraConfig):
    """Configuration of an AdaLoRA adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    Training has three phases: `tinit` warm-up steps at `init_r` ranks per matrix, a budgeting
    phase in which the total rank budget falls (cubic schedule) to `target_r` per matrix, pruning
    the least important singular triplets every `deltaT` steps, and `tfinal` final steps at the
    final ranks. `total_step` (the number of training steps) is required, even to load an adapter.
    """

    peft_type: str = "ADALORA"
    target_r: int = field(default=8, metadata={"help": "Target average rank per adapted matrix."})
    init_r: int = field(default=12, metadata={"help": "Initial rank per adapted matrix."})
    tinit: int = field(default=0, metadata={"help": "Warm-up steps before any pruning."})
    tfinal: int = field(default=0, metadata={"help": "Final steps at the final ranks (no more allocation)."})
    deltaT: int = field(default=1, metadata={"help": "Steps between two budget allocations."})
    beta1: float = field(default=0.85, metadata={"help": "EMA coefficient of the sensitivity."})
    beta2: float = field(default=0.85, metadata={"help": "EMA coefficient of the uncertainty."})
    orth_reg_weight: float = field(default=0.5, metadata={"help": "Weight of the orthogonality regulariser."})
    total_step: Optional[int] = field(default=None, metadata={"help": "Total training steps (required, > 0)."})
    rank_pattern: Optional[dict] = field(
        default=None, metadata={"help": "Pruning result: '<module>.lora_E' -> bool mask of the kept ranks."}
    )

    # LoRA options peft-lora implements but AdaLoRA's SVD layers do not: refused at any other value.
    not_implemented: ClassVar[Mapping[str, Any]] = {
        **LoraConfig.not_implemented,
        "target_parameters": None,
        "trainable_token_indices": None,
        "alora_invocation_tokens": None,
        "layer_replication": None,
        "use_bdlora": None,
        "velora_config": None,
        "kasa_config": None,
        "monteclora_config": None,
        "eva_config": None,
        "corda_config": None,
        "lora_ga_config": None,
        "ensure_weight_tying": False,
    }

    def __post_init__(self) -> None:
        if isinstance(self.init_lora_weights, str) and self.init_lora_weights in ("eva", "corda", "lora_ga"):
            raise ConfigError(
                f"{type(self).__name__}: init_lora_weights={self.init_lora_weights!r} is a LoRA initialisation that "
                f"AdaLoRA's SVD layers do not implement; use True or False."
            )
        super().__post_init__()
        name = type(self).__name__
        if self.use_dora:
            raise ConfigError(f"{name}: ADALORA does not support DoRA; set use_dora=False.")
        if self.loftq_config:
            raise ConfigError(f"{name}: ADALORA does not support LOFTQ; remove loftq_config.")
        if self.r != 8:  # HF's default; AdaLoRA's layer rank is init_r
            warnings.warn(
                "Note that `r` is not used in AdaLora and will be ignored. If you intended to set the initial rank, "
                "use `init_r` instead.",
                UserWarning,
                stacklevel=3,
            )
        for key in ("init_r", "target_r"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}.{key} must be a non-negative integer rank, got {value!r}.")
        for key in ("tinit", "tfinal"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}.{key} must be a non-negative number of steps, got {value!r}.")
        if self.total_step is None or self.total_step <= 0:
            raise ConfigError(
                f"{name}: AdaLoRA does not work when `total_step` is None, supply a value > 0 (the number of "
                f"training steps; Hugging Face PEFT requires it even to load an adapter)."
            )
        if self.orth_reg_weight < 0:
            raise ConfigError(
                f"{name}: `orth_reg_weight` should be greater than or equal to 0, but the value passed is "
                f"{self.orth_reg_weight}."
            )
        if self.tinit >= self.total_step - self.tfinal:
            raise ConfigError(
                f"{name}: the supplied schedule values don't allow for a budgeting phase (tinit={self.tinit} >= "
                f"total_step - tfinal = {self.total_step - self.tfinal}). Decrease `tfinal`/`tinit` or increase "
                f"`total_step`."
            )

    # LoraConfig's rank_pattern is regex -> rank; AdaLoRA's is module -> bool mask (None until pruned).
    def _validate_patterns(self) -> None:
        masks = self.rank_pattern
        self.rank_pattern = {}
        try:
            super()._validate_patterns()  # alpha_pattern (accepted and, as in HF, unused by AdaLoRA)
        finally:
            self.rank_pattern = masks
        if masks is None:
            return
        if not isinstance(masks, dict):
            raise ConfigError(f"{type(self).__name__}.rank_pattern must be null or a dict, got {masks!r}.")
        self.rank_pattern = {key: _as_mask(self, key, value) for key, value in masks.items()}


def _as_mask(config: AdaLoraConfig, key: object, value: object) -> list[bool]:
    name = type(config).__name__
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{name}.rank_pattern keys must be module paths ending in '.lora_E', got {key!r}.")
    if isinstance(value, torch.Tensor):
        if value.dtype != torch.bool:
            raise ConfigError(f"{name}.rank_pattern[{key!r}] must be a bool mask, got a {value.dtype} tensor.")
        value = value.reshape(-1).tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, bool) for v in value):
        raise ConfigError(
            f"{name}.rank_pattern[{key!r}] must be a list of booleans (True = rank kept), got {value!r}. AdaLoRA's "
            f"rank_pattern is written by update_and_allocate, not a LoRA-style rank number."
        )
    if len(value) != config.init_r:
        raise ConfigError(
            f"{name}.rank_pattern[{key!r}] has {len(value)} entries but init_r is {config.init_r}; the mask must "
            f"have one entry per initial rank."
        )
    return list(value)
