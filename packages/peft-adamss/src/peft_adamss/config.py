"""`AdamssConfig`: Hugging Face PEFT's AdaMSS config (0.21.2), field for field (no `exclude_modules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from peft_core import ConfigError
from peft_core.config_fields import LayerSelectionFields, TargetingFields, check_bools, check_ints, check_numbers
from peft_core.tuners.matching import check_layer_selection


@dataclass
class AdamssConfig(LayerSelectionFields, TargetingFields):
    """AdaMSS: low-rank updates in several subspaces found by clustering the weight's singular vectors.

    Each adapted `nn.Linear` (its bias as an extra input column) is decomposed by a seeded low-rank
    SVD of rank `r`; the output rows are clustered (k-means) into `num_subspaces` groups; group `k`
    trains `A_k [rank_k, r]` and `B_k [rows_k, rank_k]` over the frozen projection `newB [r, in(+1)]`.

    - `subspace_rank`: the rank of each group (capped by its size); `use_dynamic_rank` with
      `svd_threshold` chooses it from the group's singular values instead.
    - `init_weights`: "orthogonal" starts with `B = 0` (a no-op); None (or False) with small random `B` (tests).
    - `use_asa` and the `asa_*` / warmup / `mask_interval` fields: Adaptive Subspace Allocation, which
      freezes the least important subspaces during training (`AdamssModel.update_and_allocate`).
    - `random_seed`: seed of the low-rank SVD (a forked RNG; the global one is untouched).
    """

    peft_type: str = "ADAMSS"
    r: int = field(default=100, metadata={"help": "Rank of the SVD before clustering."})
    num_subspaces: int = field(default=5, metadata={"help": "Number of subspaces (k-means clusters of output rows)."})
    subspace_rank: int = field(default=1, metadata={"help": "Rank of each subspace's update."})
    init_weights: Optional[Literal["orthogonal"]] = field(
        default="orthogonal", metadata={"help": "'orthogonal': B = 0 (no-op); None: small random B (tests)."}
    )
    use_asa: bool = field(default=False, metadata={"help": "Adaptive Subspace Allocation while training."})
    asa_target_subspaces: int = field(default=50, metadata={"help": "Subspaces left active after pruning (all layers)."})
    init_warmup: int = field(default=50, metadata={"help": "Step at which ASA starts."})
    final_warmup: int = field(default=1000, metadata={"help": "Step at which ASA reaches its target."})
    mask_interval: int = field(default=100, metadata={"help": "Steps between ASA masking rounds."})
    asa_importance_beta: float = field(default=0.85, metadata={"help": "EMA factor of the importance scores."})
    asa_uncertainty_beta: float = field(default=0.85, metadata={"help": "EMA factor of their uncertainty."})
    asa_schedule_exponent: float = field(default=3.0, metadata={"help": "Exponent of the pruning schedule."})
    use_dynamic_rank: bool = field(default=False, metadata={"help": "Choose each subspace's rank by svd_threshold."})
    svd_threshold: float = field(default=0.1, metadata={"help": "Singular values above this share of the largest count."})
    random_seed: int = field(default=0, metadata={"help": "Seed of the low-rank SVD."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.init_weights is False:
            self.init_weights = None  # HF's spelling of the random start
        if self.init_weights not in ("orthogonal", None):
            raise ConfigError(f"{name}.init_weights must be 'orthogonal' or None, got {self.init_weights!r}.")
        check_ints(
            self, "num_subspaces", "subspace_rank", "asa_target_subspaces", "init_warmup", "final_warmup", "mask_interval",
            "random_seed",
        )
        for count in ("num_subspaces", "subspace_rank"):
            if getattr(self, count) < 1:
                raise ConfigError(f"{name}.{count} must be at least 1, got {getattr(self, count)}.")
        check_numbers(self, "asa_importance_beta", "asa_uncertainty_beta", "asa_schedule_exponent", "svd_threshold")
        check_bools(self, "use_asa", "use_dynamic_rank")
        check_layer_selection(self, regex_excludes_layers=False)
        if self.use_asa:
            if self.mask_interval <= 0:
                raise ConfigError(f"{name}.mask_interval must be positive when use_asa=True, got {self.mask_interval}.")
            if self.init_warmup >= self.final_warmup:
                raise ConfigError(
                    f"{name}: ASA needs init_warmup < final_warmup, got {self.init_warmup} and {self.final_warmup}."
                )
            if self.asa_target_subspaces <= 0:
                raise ConfigError(f"{name}.asa_target_subspaces must be positive, got {self.asa_target_subspaces}.")
            if self.asa_schedule_exponent <= 0:
                raise ConfigError(f"{name}.asa_schedule_exponent must be positive, got {self.asa_schedule_exponent}.")
