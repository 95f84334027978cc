"""Sub-configs of the LoRA variants implemented here (Hugging Face PEFT 0.21.2's fields and defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from peft_core.errors import ConfigError


@dataclass
class BdLoraConfig:
    """BD-LoRA: block-diagonal A (row-sharded layers) or B (column-sharded layers) for multi-LoRA serving
    with tensor parallelism; a pattern matches when it is a substring of the module name."""

    target_modules_bd_a: Optional[list[str]] = field(default=None, metadata={"help": "Modules with a block-diagonal A."})
    target_modules_bd_b: Optional[list[str]] = field(default=None, metadata={"help": "Modules with a block-diagonal B."})
    nblocks: int = field(default=1, metadata={"help": "Number of diagonal blocks."})
    match_strict: bool = field(default=True, metadata={"help": "Every target must match one of the two lists."})

    def __post_init__(self) -> None:
        if isinstance(self.nblocks, bool) or not isinstance(self.nblocks, int) or self.nblocks <= 0:
            raise ConfigError(f"BdLoraConfig.nblocks must be a positive integer, got {self.nblocks!r}.")
        overlap = set(self.target_modules_bd_a or []) & set(self.target_modules_bd_b or [])
        if overlap:
            raise ConfigError(f"BdLoraConfig: {sorted(overlap)} are in both target_modules_bd_a and target_modules_bd_b.")


@dataclass
class VeloraConfig:
    """VeLoRA: the LoRA A input is kept for the backward pass as one number per feature group (its
    projection on a unit vector), which saves activation memory; the forward pass is LoRA's."""

    num_groups: int = field(default=64, metadata={"help": "Feature groups the input is split into."})
    scale: float = field(default=1.0, metadata={"help": "Scale of the reconstructed activations (backward)."})
    init_type: Literal["batch_average", "batch_average_once", "random"] = field(
        default="batch_average", metadata={"help": "How the projection vector is set."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.num_groups, bool) or not isinstance(self.num_groups, int) or self.num_groups <= 0:
            raise ConfigError(f"VeloraConfig.num_groups must be a positive integer, got {self.num_groups!r}.")
        if not self.scale > 0:
            raise ConfigError(f"VeloraConfig.scale must be positive, got {self.scale!r}.")
        if self.init_type not in ("batch_average", "batch_average_once", "random"):
            raise ConfigError(
                f"VeloraConfig.init_type must be 'batch_average', 'batch_average_once' or 'random', got {self.init_type!r}."
            )


@dataclass
class KasaConfig:
    """KaSA: the `r` smallest singular components of each targeted base weight are dropped (once, in place)
    and the update is `scaling · B diag(ΔΣ) A` with a learned diagonal `lora_diag`. `beta` and `gamma` weigh
    the paper's two regularisers, which only act when the training loop adds `LoraModel._get_kasa_loss()`."""

    beta: float = field(default=1e-4, metadata={"help": "Weight of the L2 penalty sum(lora_diag ** 2)."})
    gamma: float = field(default=1e-3, metadata={"help": "Weight of the orthogonality penalty on A and B."})

    def __post_init__(self) -> None:
        for name in ("beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"KasaConfig.{name} must be a non-negative number, got {value!r}.")


@dataclass
class MontecloraConfig:
    """MonteCLoRA: during training A is replaced by a weighted average of `num_samples` noisy copies (Gaussian
    noise with a learned Wishart-distributed variance, mixture weights from a learned Dirichlet); evaluation and
    merging use plain LoRA. `LoraModel._get_monteclora_loss()` gives the variational (KL and entropy) terms."""

    num_samples: int = field(default=8, metadata={"help": "Noisy copies of A averaged per training step."})
    use_entropy: bool = field(default=False, metadata={"help": "Add sum(expert_weights²) to the loss."})
    dirichlet_prior: float = field(default=0.1, metadata={"help": "Concentration of the Dirichlet prior."})
    sample_scaler: float = field(default=1e-4, metadata={"help": "Scale of the sampled noise."})
    kl_loss_weight: float = field(default=1e-5, metadata={"help": "Weight of the KL terms in the loss."})
    buffer_size: int = field(
        default=150, metadata={"help": "Hugging Face PEFT's pre-drawn sample count; here noise is drawn per step."}
    )

    def __post_init__(self) -> None:
        for name in ("num_samples", "buffer_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"MontecloraConfig.{name} must be a positive integer, got {value!r}.")
        for name in ("dirichlet_prior", "sample_scaler", "kl_loss_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"MontecloraConfig.{name} must be a number, got {value!r}.")
        if not self.dirichlet_prior > 0:
            raise ConfigError(f"MontecloraConfig.dirichlet_prior must be positive, got {self.dirichlet_prior!r}.")
