"""Incremental PCA in torch (Ross et al. 2008, the algorithm of scikit-learn's IncrementalPCA), for EVA.

Each `partial_fit(X)` updates the running mean and variance, stacks the previous components (scaled by
their singular values), the centred batch and a mean-correction row, and takes a (low-rank, seeded)
SVD of that; signs are fixed so that results are reproducible. Float64 accumulation for the moments.
"""

from __future__ import annotations

import torch


class IncrementalPCA:
    def __init__(self, n_components: int, lowrank: bool = True, lowrank_niter: int = 4, seed: int | None = 42) -> None:
        self.n_components = n_components
        self.lowrank = lowrank
        self.lowrank_q = 2 * n_components
        self.lowrank_niter = lowrank_niter
        self.seed = seed
        self.mean_: torch.Tensor | None = None
        self.var_: torch.Tensor | None = None
        self.n_samples_seen_: torch.Tensor | None = None
        self.components_: torch.Tensor | None = None
        self.singular_values_: torch.Tensor | None = None
        self.explained_variance_ratio_: torch.Tensor | None = None

    @property
    def fitted(self) -> bool:
        return self.components_ is not None

    @staticmethod
    def _moments(
        x: torch.Tensor, mean: torch.Tensor | None, var: torch.Tensor | None, count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Running mean / variance / count after batch `x` (Chan et al.'s pairwise update, float64 sums)."""
        new_count = torch.tensor([x.shape[0]], device=x.device)
        total = count + new_count
        last_sum = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device) if mean is None else mean * count
        new_sum = x.sum(dim=0, dtype=torch.float64)
        updated_mean = (last_sum + new_sum) / total
        centred = x - new_sum / new_count
        correction = centred.sum(dim=0, dtype=torch.float64).square()
        centred.square_()
        new_unnormalized = centred.sum(dim=0, dtype=torch.float64)
        new_unnormalized -= correction / new_count
        if var is None:
            return updated_mean, new_unnormalized / total, total
        ratio = count.double() / new_count
        unnormalized = var * count + new_unnormalized + ratio / total * (last_sum / ratio - new_sum).square()
        return updated_mean, unnormalized / total, total

    def _svd(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.lowrank:
            return torch.linalg.svd(x, full_matrices=False)
        with torch.random.fork_rng(enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            u, s, v = torch.svd_lowrank(x, q=self.lowrank_q, niter=self.lowrank_niter)
        return u, s, v.mH

    @staticmethod
    def _flip_signs(u: torch.Tensor, vt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Make the largest-magnitude entry of each right singular vector positive."""
        rows = torch.argmax(torch.abs(vt), dim=1)
        signs = torch.sign(vt[range(vt.shape[0]), rows])
        u *= signs[: u.shape[1]].view(1, -1)
        vt *= signs.view(-1, 1)
        return u, vt

    @torch.no_grad()
    def partial_fit(self, x: torch.Tensor) -> None:
        x = x.clone()
        if x.dtype not in (torch.float32, torch.float64):
            x = x.to(torch.float32)
        samples, features = x.shape
        if self.n_components > features or self.n_components > samples:
            raise ValueError(
                f"IncrementalPCA: {self.n_components} components need at least that many samples and features, "
                f"got a batch of {samples} x {features}."
            )
        first = not self.fitted
        if first:
            self.n_samples_seen_ = torch.tensor([0], device=x.device)
        mean, var, total = self._moments(x, self.mean_, self.var_, self.n_samples_seen_)
        if first:
            x -= mean
        else:
            batch_mean = torch.mean(x, dim=0)
            x -= batch_mean
            factor = torch.sqrt((self.n_samples_seen_.double() / total) * samples)
            correction = factor * (self.mean_ - batch_mean)
            x = torch.vstack((self.singular_values_.view((-1, 1)) * self.components_, x, correction))
        u, s, vt = self._svd(x)
        u, vt = self._flip_signs(u, vt)
        self.n_samples_seen_ = total
        self.components_ = vt[: self.n_components]
        self.singular_values_ = s[: self.n_components]
        self.mean_, self.var_ = mean, var
        self.explained_variance_ratio_ = (s**2 / torch.sum(var * total))[: self.n_components]
