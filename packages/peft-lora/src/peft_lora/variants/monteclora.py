"""MonteCLoRA (Monte Carlo LoRA) as a LoRA variant, with Hugging Face PEFT 0.21.2's files.

Per adapter and layer a `MontecloraSampler` holds the variational parameters (`std_prior` [r],
`expert_weights_prior` [n]) and the last sampled state (`gaussian_var_prior` [r, r], `expert_weights` [n]),
all saved with the adapter. In training mode A is replaced by `Σ_k w_k (Aᵀ + ε_k)ᵀ`: `ε_k` Gaussian noise whose
column covariance is the diagonal of a Wishart-reparameterised matrix built from `std_prior`, `w` a softmax of a Dirichlet
(Laplace-approximated) sample from `expert_weights_prior`. In eval mode and for merging the adapter is plain
LoRA. The noise is drawn per step from torch's generator (Hugging Face PEFT pre-draws `buffer_size` steps'
worth per layer; the distribution is the same, the draws are not).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import LoraVariant, adapter_entries

SAMPLER = "lora_monteclora_sampler"
EPS = 1e-3


def wishart_sample(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One Wishart(df=size, scale=I) sample by Bartlett's decomposition: `L Lᵀ` with `L` lower triangular,
    `sqrt(χ²(df − i))` on the diagonal and standard normals below. Only its diagonal is used, so a (near)
    singular sample, common for df = size, needs no correction."""
    degrees = torch.arange(size, 0, -1, dtype=torch.float32, device=device)
    lower = torch.randn(size, size, device=device).tril(-1) + torch.diag(torch.distributions.Chi2(degrees).sample().sqrt())
    return (lower @ lower.T).to(dtype)


class _LastStep:
    """The last training step's covariance and mixture weights, with their autograd graph (for the loss).
    Never copied: a deep copy of the model starts without one (graph tensors can't be deep-copied)."""

    def __init__(self) -> None:
        self.var: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def __deepcopy__(self, memo: dict) -> _LastStep:
        return _LastStep()


class MontecloraSampler(nn.Module):
    """The variational parameters of one adapter on one layer, and their sampling and KL terms."""

    def __init__(self, in_features: int, rank: int, settings: Any, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features, self.rank, self.settings = in_features, rank, settings
        self.std_prior = nn.Parameter(torch.rand(rank, device=device, dtype=dtype))
        self.expert_weights_prior = nn.Parameter(torch.rand(settings.num_samples, device=device, dtype=dtype))
        self.register_buffer("gaussian_var_prior", torch.eye(rank, device=device, dtype=dtype))
        n = settings.num_samples
        self.register_buffer("expert_weights", torch.full((n,), 1.0 / n, device=device, dtype=dtype))
        self.__dict__["last_step"] = _LastStep()  # the saved buffers hold the detached values

    def _dirichlet_logits(self, alpha: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n = self.settings.num_samples
        alpha = alpha.clamp(min=1e-6)
        mu = alpha.log() - alpha.log().mean()
        diag = (1 / alpha * (1 - 2 / n) + (1 / alpha).sum() / n**2).clamp(min=1e-6)
        sigma = torch.diag(diag) + 1e-6 * torch.eye(n, device=alpha.device, dtype=alpha.dtype)
        try:
            chol = torch.linalg.cholesky(sigma.float())
        except torch.linalg.LinAlgError:
            chol = torch.linalg.cholesky((sigma + 1e-4 * torch.eye(n, device=alpha.device, dtype=alpha.dtype)).float())
        return chol.to(sigma.dtype) @ z + mu

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(noise [n, in, r], mixture weights [n]) for one training step."""
        device, dtype = self.std_prior.device, self.std_prior.dtype
        n, r = self.settings.num_samples, self.rank
        z_mvn = torch.randn(n, self.in_features, r, device=device, dtype=dtype)
        z_dirichlet = torch.randn(n, device=device, dtype=dtype)
        std = torch.diag(self.std_prior.exp())
        var = torch.diag((std @ wishart_sample(r, device, dtype) @ std.T).diag().clip(min=EPS))
        self.last_step.var = var
        self.gaussian_var_prior = var.detach()
        chol = torch.linalg.cholesky(var.float()).to(dtype)
        noise = torch.nan_to_num(torch.einsum("eio,op->eip", z_mvn, chol), nan=EPS) * self.settings.sample_scaler
        weights = torch.softmax(self._dirichlet_logits(self.expert_weights_prior.exp(), z_dirichlet), dim=-1)
        self.expert_weights = weights.detach()
        self.last_step.weights = weights
        return noise, weights

    def variational_loss(self) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """(kl_loss_weight · (Dirichlet KL + Wishart KL + Gaussian KL), entropy term); zeros in eval mode."""
        if not self.training:
            return 0.0, 0.0
        s, r, n = self.settings, self.rank, self.settings.num_samples
        alpha = self.expert_weights_prior.exp()
        prior = torch.full((n,), float(s.dirichlet_prior), device=alpha.device)
        kl_dirichlet = (
            (torch.lgamma(alpha.sum()) - torch.lgamma(prior.sum()))
            + (torch.lgamma(alpha) - torch.lgamma(prior)).sum()
            + ((alpha - prior) * (torch.digamma(alpha) - torch.digamma(alpha.sum()))).sum()
        )
        std = torch.diag(self.std_prior.exp())
        var = torch.diag((std @ std.T).diag())
        kl_wishart = 0.5 * (-torch.log(var).trace() * r + var.trace() * r - r**2)
        last = self.last_step.var if self.last_step.var is not None else self.gaussian_var_prior
        last = last.clamp(min=1e-6)
        kl_gaussian = n * 0.5 * (last.trace() - torch.log(last).trace() - r)
        weights = self.last_step.weights if self.last_step.weights is not None else self.expert_weights
        entropy = (weights**2).sum() if s.use_entropy else 0.0
        return s.kl_loss_weight * (kl_dirichlet + kl_wishart + kl_gaussian), entropy


class MontecloraVariant(LoraVariant):
    option, label = "monteclora_config", "MonteCLoRA"

    def init(self, layer: Any, name: str, config: Any) -> None:
        weight = layer.lora_A[name].weight
        sampler = MontecloraSampler(layer.in_features, layer.r[name], self.settings, weight.device, weight.dtype)
        layer._own_container(SAMPLER, nn.ModuleDict)[name] = sampler

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        x = layer._cast_input(x, lora_a.weight)
        weight_a = lora_a.weight
        if layer.training:
            x = layer.lora_dropout[name](x)
            noise, weights = layer.lora_monteclora_sampler[name].sample()
            if torch.isnan(noise).any() or torch.isnan(weights).any():
                warnings.warn("MonteCLoRA sampling produced NaNs; this step uses the unperturbed A.", stacklevel=2)
            else:
                weight_a = torch.einsum("n,nij->ij", weights, weight_a.T + noise).T
        return result + lora_b(F.linear(x, weight_a)) * layer.scaling[name]


def monteclora_loss(modules: Iterable[Any], adapter_names: Sequence[str]) -> torch.Tensor | float:
    """Mean over MonteCLoRA layers of (KL + entropy) for `adapter_names` (0.0 when there is none)."""
    total: torch.Tensor | float = 0.0
    count = 0
    for _, _, sampler in adapter_entries(modules, SAMPLER, adapter_names):
        kl, entropy = sampler.variational_loss()
        total = total + kl + entropy
        count += 1
    return total / count if count else 0.0


__all__ = ["MontecloraSampler", "MontecloraVariant", "monteclora_loss"]
