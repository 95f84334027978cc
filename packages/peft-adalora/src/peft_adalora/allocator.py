"""`RankAllocator`: AdaLoRA's importance scores and rank budget (Zhang et al., 2023; HF PEFT 0.21.2's rules).

For every parameter `p` of the trained adapter (`lora_A`, `lora_B`, `lora_E` of each layer), after
each backward pass:

    ipt  = |p ⊙ ∇p|                                    sensitivity
    Ī   ← β1·Ī + (1 − β1)·ipt                          smoothed sensitivity
    Ū   ← β2·Ū + (1 − β2)·|ipt − Ī|                    uncertainty
    score(p) = Ī ⊙ Ū

The score of singular triplet `i` of a layer is `score(E)[i] + mean_j score(A)[i, j] + mean_k score(B)[k, i]`.
The budget (total kept ranks) is `init_bgt` (= Σ init ranks) until step `tinit`, then falls with a cubic
schedule to `target_bgt` (= `target_r` × number of adapted matrices) at step `total_step - tfinal`:

    budget(t) = int((init_bgt − target_bgt) · (1 − (t − tinit) / (total_step − tfinal − tinit))³ + target_bgt)

Every `deltaT` steps of that phase the triplets whose score is at most the `init_bgt − budget`-th
smallest get `E = 0`; the kept triplets form the `rank_pattern` (module path + `.lora_E` -> bool mask).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from .layers import AdaLoraLayer

_PARAMS = ("lora_A", "lora_B", "lora_E")


def adalora_layers(model: nn.Module, adapter_name: str) -> Iterator[tuple[str, AdaLoraLayer]]:
    """(module path, layer) of every AdaLoRA layer holding `adapter_name`, in model order."""
    for path, module in model.named_modules():
        if isinstance(module, AdaLoraLayer) and adapter_name in module.lora_A:
            yield path, module


def rank_key(path: str) -> str:
    """The `rank_pattern` key of the layer at `path` (HF's, without the adapter name)."""
    return f"{path}.lora_E"


class RankAllocator:
    """Importance scores and the budget schedule of the one trainable AdaLoRA adapter of a model."""

    def __init__(self, model: nn.Module, config: Any, adapter_name: str) -> None:
        if not 0 < config.beta1 < 1 or not 0 < config.beta2 < 1:
            raise ValueError(
                f"AdaLoRA needs 0 < beta1 < 1 and 0 < beta2 < 1 (EMA coefficients), got beta1={config.beta1}, "
                f"beta2={config.beta2}."
            )
        if isinstance(config.deltaT, bool) or not isinstance(config.deltaT, int) or config.deltaT < 1:
            raise ValueError(f"AdaLoRA's deltaT (steps between allocations) must be an integer >= 1, got {config.deltaT!r}.")
        self.config = config
        self.adapter_name = adapter_name
        self.reset_ipt()
        layers = list(adalora_layers(model, adapter_name))
        self.init_bgt = sum(layer.lora_A[adapter_name].shape[0] for _, layer in layers)
        self.target_bgt = config.target_r * len(layers)

    def reset_ipt(self) -> None:
        self.ipt: dict[tuple[str, str], torch.Tensor] = {}
        self.exp_avg_ipt: dict[tuple[str, str], torch.Tensor] = {}
        self.exp_avg_unc: dict[tuple[str, str], torch.Tensor] = {}

    # -- schedule ---------------------------------------------------------------------------
    def budget_schedule(self, step: int) -> tuple[int, bool]:
        """(total ranks allowed at `step`, whether to prune at `step`)."""
        tinit, tfinal, total_step = self.config.tinit, self.config.tfinal, self.config.total_step
        if step <= tinit:
            return self.init_bgt, False
        if step > total_step - tfinal:
            return self.target_bgt, True
        mul_coeff = 1 - (step - tinit) / (total_step - tfinal - tinit)
        budget = int((self.init_bgt - self.target_bgt) * (mul_coeff**3) + self.target_bgt)
        return budget, step % self.config.deltaT == 0

    # -- importance -------------------------------------------------------------------------
    def update_ipt(self, model: nn.Module) -> None:
        """Fold the current gradients into the smoothed sensitivity and uncertainty of every parameter."""
        beta1, beta2 = self.config.beta1, self.config.beta2
        for path, layer in adalora_layers(model, self.adapter_name):
            for attr in _PARAMS:
                p = getattr(layer, attr)[self.adapter_name]
                if p.grad is None:
                    raise ValueError(
                        f"AdaLoRA: {path}.{attr}.{self.adapter_name} has no gradient. Call update_and_allocate after "
                        f"loss.backward() and before optimizer.zero_grad()."
                    )
                key = (path, attr)
                if key not in self.ipt:
                    self.ipt[key] = torch.zeros_like(p)
                    self.exp_avg_ipt[key] = torch.zeros_like(p)
                    self.exp_avg_unc[key] = torch.zeros_like(p)
                with torch.no_grad():
                    self.ipt[key] = (p * p.grad).abs().detach()
                    self.exp_avg_ipt[key] = beta1 * self.exp_avg_ipt[key] + (1 - beta1) * self.ipt[key]
                    self.exp_avg_unc[key] = (
                        beta2 * self.exp_avg_unc[key] + (1 - beta2) * (self.ipt[key] - self.exp_avg_ipt[key]).abs()
                    )

    def _score(self, key: tuple[str, str]) -> torch.Tensor:
        if key not in self.exp_avg_ipt:
            raise ValueError(
                f"AdaLoRA has no importance scores for {key[0]}.{key[1]} yet: call update_and_allocate at every "
                f"training step from the start (it must see steps before total_step - tfinal)."
            )
        return self.exp_avg_ipt[key] * self.exp_avg_unc[key]

    def triplet_scores(self, model: nn.Module) -> dict[str, tuple[AdaLoraLayer, torch.Tensor]]:
        """rank_pattern key -> (layer, score of each singular triplet as an `[r, 1]` column)."""
        out = {}
        for path, layer in adalora_layers(model, self.adapter_name):
            score_a = torch.mean(self._score((path, "lora_A")), dim=1, keepdim=True)
            score_b = torch.mean(self._score((path, "lora_B")), dim=0, keepdim=False).view(-1, 1)
            score_e = self._score((path, "lora_E"))
            total = score_e.view(-1) + torch.cat([score_a, score_b], dim=1).sum(dim=1, keepdim=False)
            out[rank_key(path)] = (layer, total.view(-1, 1))
        return out

    # -- pruning ----------------------------------------------------------------------------
    def mask_to_budget(self, model: nn.Module, budget: int) -> dict[str, list[bool]] | None:
        """Zero `E` of the least important triplets so that about `budget` remain; return the kept masks.

        Returns None (and prunes nothing) when the budget still covers every rank (HF would fail there).
        """
        scores = self.triplet_scores(model)
        k = self.init_bgt - budget
        if k <= 0 or not scores:
            return None
        threshold = torch.kthvalue(torch.cat([s.view(-1) for _, s in scores.values()]), k=k)[0].item()
        rank_pattern: dict[str, list[bool]] = {}
        with torch.no_grad():
            for key, (layer, score) in scores.items():
                pruned = score <= threshold
                layer.lora_E[self.adapter_name].masked_fill_(pruned, 0.0)
                rank_pattern[key] = (~pruned).view(-1).tolist()
        return rank_pattern

    def update_and_allocate(
        self, model: nn.Module, global_step: int, force_mask: bool = False
    ) -> tuple[int, dict[str, list[bool]] | None]:
        if global_step < self.config.total_step - self.config.tfinal:
            self.update_ipt(model)
        budget, mask_ind = self.budget_schedule(global_step)
        rank_pattern = self.mask_to_budget(model, budget) if (mask_ind or force_mask) else None
        return budget, rank_pattern

    def mask_using_rank_pattern(self, model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
        """Zero `E` of the pruned triplets again (the final phase keeps the final pattern fixed)."""
        with torch.no_grad():
            for path, layer in adalora_layers(model, self.adapter_name):
                mask = masks.get(path)
                if mask is None:
                    raise ValueError(f"AdaLoRA: rank_pattern has no entry {rank_key(path)!r} for a trained layer.")
                e = layer.lora_E[self.adapter_name]
                e.masked_fill_(~mask.to(e.device).unsqueeze(-1), 0.0)
