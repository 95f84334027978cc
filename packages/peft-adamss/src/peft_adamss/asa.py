"""Adaptive Subspace Allocation (ASA): during training, keep only the most important subspaces trainable.

Every step inside `[init_warmup, final_warmup]` the importance `|w · g|` of each subspace's `A_k` and
`B_k` and its uncertainty are averaged (EMA); every `mask_interval` steps the subspaces of all layers
are ranked by `mean(importance · uncertainty)` of `A_k` plus that of `B_k`, and only the top ones
(a target falling from all subspaces to `asa_target_subspaces` on a power schedule) keep
`requires_grad`. Follows Hugging Face PEFT 0.21.2's `update_and_allocate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class SubspaceScores:
    """EMA importance / uncertainty of one adapter's subspaces on one layer (None until first seen)."""

    importance_a: list[torch.Tensor | None] = field(default_factory=list)
    importance_b: list[torch.Tensor | None] = field(default_factory=list)
    uncertainty_a: list[torch.Tensor | None] = field(default_factory=list)
    uncertainty_b: list[torch.Tensor | None] = field(default_factory=list)

    @classmethod
    def empty(cls, count: int) -> SubspaceScores:
        return cls([None] * count, [None] * count, [None] * count, [None] * count)

    def update(self, params_a, params_b, importance_beta: float, uncertainty_beta: float) -> None:
        for params, importance, uncertainty in (
            (params_a, self.importance_a, self.uncertainty_a),
            (params_b, self.importance_b, self.uncertainty_b),
        ):
            for k, param in enumerate(params):
                if param.grad is None:
                    continue
                if importance[k] is None:
                    importance[k] = torch.zeros_like(param, requires_grad=False)
                    uncertainty[k] = torch.zeros_like(param, requires_grad=False)
                score = (param * param.grad).abs().detach()
                uncertainty[k].mul_(uncertainty_beta).add_((score - importance[k]).abs(), alpha=1 - uncertainty_beta)
                importance[k].mul_(importance_beta).add_(score, alpha=1 - importance_beta)

    def score(self, k: int) -> torch.Tensor | None:
        if self.importance_a[k] is None or self.importance_b[k] is None:
            return None
        return (self.importance_a[k] * self.uncertainty_a[k]).mean() + (self.importance_b[k] * self.uncertainty_b[k]).mean()


def scheduled_target(step: int, total: int, config) -> int | None:
    """How many subspaces stay active at `step` (None before the warm-up)."""
    if total == 0 or step < config.init_warmup:
        return None
    if step > config.final_warmup:
        return config.asa_target_subspaces
    remaining = 1.0 - (step - config.init_warmup) / (config.final_warmup - config.init_warmup)
    remaining = max(0.0, min(1.0, remaining))
    return int(config.asa_target_subspaces + (total - config.asa_target_subspaces) * remaining**config.asa_schedule_exponent)


def keep_top(scored: list[tuple[object, int, torch.Tensor]], target: int) -> list[tuple[object, int, bool]]:
    """(layer, subspace, stays active) for each scored subspace: the `target` best ones stay (ties at the
    threshold stay too). HF compares with `>`, which keeps one fewer than its target."""
    if not scored:
        return []
    values = torch.stack([s for _, _, s in scored])
    threshold = float("-inf") if target >= len(scored) else -torch.kthvalue(-values, target)[0].item()
    return [(layer, k, float(s) >= threshold) for layer, k, s in scored]
