"""Many LoRA adapters in one batch, as a multi-tenant server runs it: all adapters of a layer in a few
batched matrix products instead of one pair of products per adapter.

Rows are grouped by adapter once per forward (the `BatchPlan`). Adapters whose groups have the same
number of rows and the same rank form a bucket; a bucket's rows are gathered adapter by adapter into
a (groups, rows·tokens, in) tensor and multiplied with the adapters' A and s·B weights stacked along
a batch dimension (two `bmm`s, as S-LoRA and Punica do with their segmented kernels), then added
back into their rows of the base output with one `index_add_`. A decode step of 64 rows with 64
different adapters is one bucket: two products per layer instead of 128.

The batched product forms the same dot products as the per-adapter ones but may sum them in another
order, so outputs equal per-row runs within fp32 rounding, not bit for bit (tests/test_grouped_batch.py).
That is why it only runs from `MIN_ADAPTERS` adapters on: smaller mixes keep the per-adapter loop and
Hugging Face PEFT's bits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch
from peft_core import BatchPlan
from torch import nn

from .base import is_plain_linear

# below this many adapters in a batch the per-adapter loop is as fast and keeps the exact bits
MIN_ADAPTERS = 8
# bucket compositions whose stacked weights a layer keeps (one batch of a server usually has one or two)
CACHED_COMPOSITIONS = 2


def grouped_delta_(
    plan: BatchPlan,
    x: torch.Tensor,
    result: torch.Tensor,
    eligible: Callable[[str], tuple[torch.Tensor, torch.Tensor, float] | None],
    cache: dict | None = None,
) -> set[str]:
    """Add the updates of every adapter for which `eligible(name)` gives `(A weight, B weight, scaling)`
    to its rows of `result`, in place, bucketed as described above; returns the names it handled (the
    caller runs the others its own way). Nothing is done below `MIN_ADAPTERS` eligible adapters.

    `cache` (the layer's) keeps the stacked weights of the last bucket compositions outside autograd, so
    the decode steps of one batch stack them once: a copy of those adapters' weights, refreshed when
    any of them changes (tensor version counters)."""
    weights: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
    for name in plan.adapter_groups():
        found = eligible(name)
        if found is not None:
            weights[name] = found
    if len(weights) < MIN_ADAPTERS:
        return set()
    buckets: dict[tuple[int, int], list[str]] = defaultdict(list)
    for name, (weight_a, _, _) in weights.items():
        buckets[(len(plan.groups[name]), weight_a.shape[0])].append(name)
    tail = x.shape[1:-1]
    for (rows_each, _), names in buckets.items():
        if len(names) == 1:
            continue  # nothing to batch: the caller's per-adapter path
        index = torch.tensor([row for name in names for row in plan.groups[name]], device=x.device)
        xs = x.index_select(0, index).reshape(len(names), -1, x.shape[-1])  # (groups, rows·tokens, in)
        stacked_a, stacked_b = _stacked(names, weights, cache)
        hidden = torch.bmm(xs.to(stacked_a.dtype), stacked_a.transpose(1, 2))
        delta = torch.bmm(hidden, stacked_b.transpose(1, 2))  # (groups, rows·tokens, out)
        delta = delta.reshape(len(names) * rows_each, *tail, delta.shape[-1]).to(result.dtype)
        result.index_add_(0, index, delta)
    return {name for names in buckets.values() if len(names) > 1 for name in names}


def _stacked(
    names: list[str], weights: dict[str, tuple[torch.Tensor, torch.Tensor, float]], cache: dict | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weights (groups, r, in) and scaled B weights (groups, out, r) of `names`, stacked."""
    tracked = torch.is_grad_enabled() and any(w.requires_grad for n in names for w in weights[n][:2])
    key = None
    if cache is not None and not tracked:
        key = tuple((n, a.data_ptr(), a._version, b.data_ptr(), b._version, s) for n in names for a, b, s in [weights[n]])
        hit = cache.get(key)
        if hit is not None:
            return hit
    stacked_a = torch.stack([weights[n][0] for n in names])
    stacked_b = torch.stack([weights[n][1] for n in names])
    scales = [weights[n][2] for n in names]
    if any(s != 1 for s in scales):
        stacked_b = stacked_b * torch.tensor(scales, dtype=stacked_b.dtype, device=stacked_b.device).view(-1, 1, 1)
    if key is not None:
        if len(cache) >= CACHED_COMPOSITIONS:
            cache.pop(next(iter(cache)))
        cache[key] = (stacked_a, stacked_b)
    return stacked_a, stacked_b


def plain_factors(
    lora_a: nn.Module, lora_b: nn.Module, dropout: nn.Module, scaling: object, use_dora: bool
) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """`(A, B, scaling)` when the adapter's update is exactly `scaling·B(A(x))` at inference: plain
    bias-free linear factors, no DoRA, no active dropout, a float scaling."""
    if use_dora or isinstance(scaling, torch.Tensor):
        return None
    if not (is_plain_linear(lora_a) and is_plain_linear(lora_b)) or lora_b.bias is not None:
        return None
    if not (isinstance(dropout, nn.Identity) or (type(dropout) is nn.Dropout and not dropout.training)):
        return None
    return lora_a.weight, lora_b.weight, float(scaling)
