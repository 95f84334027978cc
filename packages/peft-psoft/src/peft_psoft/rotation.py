"""`PsoftRotation`: the trained r×r transform `R` of one PSOFT adapter on one layer.

With `orth=True` the parameter `weight` packs the strict upper triangle of a skew-symmetric `Q`
(`r(r-1)/2` values) and `R = (I + Q)(I - Q)⁻¹` (solved exactly, or as the truncated series
`I + 2Q + 2Q² + … + Q^{t-1}`); with `orth=False` `weight` is `R` itself. Optional vectors scale
R's rows (`vector_b`) and columns (`vector_a`). Applied as `input @ Rᵀ`.
"""

from __future__ import annotations

import torch
from torch import nn


class PsoftRotation(nn.Module):
    def __init__(
        self,
        size: int,
        orth: bool,
        mag_b: bool,
        mag_a: bool,
        use_cayley_neumann: bool,
        num_cayley_neumann_terms: int,
        cayley_neumann_eps: float | None,
    ) -> None:
        super().__init__()
        self.size = size
        self.orth = orth
        self.use_cayley_neumann = use_cayley_neumann
        self.num_cayley_neumann_terms = num_cayley_neumann_terms
        self.cayley_neumann_eps = cayley_neumann_eps
        if orth:
            self.weight = nn.Parameter(torch.empty(size * (size - 1) // 2))
            # index buffers on the CPU even while adapters are created on the meta device (they are never saved)
            rows, cols = torch.triu_indices(size, size, 1, device="cpu")
            self.register_buffer("rows", rows, persistent=False)
            self.register_buffer("cols", cols, persistent=False)
        else:
            self.weight = nn.Parameter(torch.empty(size, size))
        self.vector_b = nn.Parameter(torch.empty(size)) if mag_b else None
        self.vector_a = nn.Parameter(torch.empty(size)) if mag_a else None

    def reset(self, init_weights: bool) -> None:
        """True: the identity (`Q = 0`, or `R = I`); False: a random start (`N(0, 0.1)` generator or `I + noise`)."""
        if any(p.is_meta for p in self.parameters()):
            return
        with torch.no_grad():
            if self.orth:
                if init_weights:
                    self.weight.zero_()
                else:
                    nn.init.normal_(self.weight, mean=0.0, std=0.1)
            else:
                nn.init.eye_(self.weight)
                if not init_weights:
                    self.weight.add_(torch.randn_like(self.weight) * 0.1)
            for vector in (self.vector_b, self.vector_a):
                if vector is not None:
                    vector.fill_(1.0)

    def _generator(self) -> torch.Tensor:
        q = torch.zeros((self.size, self.size), device=self.weight.device, dtype=self.weight.dtype)
        q = q.index_put((self.rows, self.cols), self.weight)
        return q - q.transpose(0, 1)

    def _series(self, q: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        if self.cayley_neumann_eps is not None:
            norm = torch.linalg.norm(q, ord="fro")
            if torch.isfinite(norm) and norm > self.cayley_neumann_eps:
                q = q * (self.cayley_neumann_eps / (norm + 1e-12))
        terms = int(self.num_cayley_neumann_terms)
        r = eye.clone()
        if terms > 1:
            r.add_(q, alpha=2.0)
            if terms > 2:
                power = q @ q
                r.add_(power, alpha=2.0)
                for _ in range(3, terms - 1):
                    power = power @ q
                    r.add_(power, alpha=2.0)
                r.add_(power @ q)
        return r

    def matrix(self) -> torch.Tensor:
        half = None
        if not self.orth:
            r = self.weight
        else:
            q = self._generator()
            eye = torch.eye(self.size, device=q.device, dtype=q.dtype)
            if self.use_cayley_neumann:
                r = self._series(q, eye)
            else:
                if q.dtype in (torch.float16, torch.bfloat16):  # the solver needs fp32
                    half, q, eye = q.dtype, q.float(), eye.float()
                r = torch.linalg.solve(eye - q, eye + q, left=False)
        if self.vector_b is not None:
            r = self.vector_b[:, None] * r
        if self.vector_a is not None:
            r = r * self.vector_a[None, :]
        return r.to(half) if half is not None else r

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        compute = torch.float32 if input.device.type == "cpu" and input.dtype in (torch.float16, torch.bfloat16) else input.dtype
        return (input.to(compute) @ self.matrix().to(compute).t()).to(input.dtype)
