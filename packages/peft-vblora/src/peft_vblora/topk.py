"""The compact file form of `save_only_topk_weights=True` (Hugging Face PEFT's keys and dtypes).

Only the top-k of each row of logits matter to the forward pass, so instead of `<path>.vblora_logits_A`
the file holds `<path>.vblora_logits_A_topk_indices` (the k best positions, in the smallest integer
dtype that fits `num_vectors`) and `<path>.vblora_logits_A_topk_weights` (their softmax weights
without the last, which is one minus the others). Loading rebuilds logits that are `-inf` everywhere
but at those positions, where they are the log of the weights: the same factors, but no longer
trainable.
"""

from __future__ import annotations

from typing import Mapping

import torch

from peft_core import AdapterLoadError

LOGIT_SUFFIXES = ("vblora_logits_A", "vblora_logits_B")
INDICES = "_topk_indices"
WEIGHTS = "_topk_weights"


def index_dtype(num_vectors: int) -> torch.dtype:
    """The smallest integer dtype HF uses for indices into a bank of `num_vectors`."""
    if num_vectors < 2**8:
        return torch.uint8
    if num_vectors < 2**15:
        return torch.int16
    if num_vectors < 2**31:
        return torch.int32
    return torch.int64


def compact_logits(state: Mapping[str, torch.Tensor], topk: int, num_vectors: int) -> dict[str, torch.Tensor]:
    """Replace every logits tensor of `state` by its top-k indices and weights."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.endswith(LOGIT_SUFFIXES):
            out[key] = value
            continue
        best, indices = value.detach().topk(topk)
        out[key + INDICES] = indices.to(index_dtype(num_vectors))
        out[key + WEIGHTS] = torch.softmax(best, dim=-1)[..., :-1].contiguous()
    return out


def expand_logits(state: Mapping[str, torch.Tensor], num_vectors: int) -> dict[str, torch.Tensor]:
    """The inverse: logits keys rebuilt from each `_topk_indices` / `_topk_weights` pair."""
    out: dict[str, torch.Tensor] = {}
    for key in state:
        if key.endswith(WEIGHTS):
            continue
        if not key.endswith(INDICES):
            out[key] = state[key]
            continue
        base = key[: -len(INDICES)]
        if base + WEIGHTS not in state:
            raise AdapterLoadError(
                f"{key} has no matching {base + WEIGHTS} in the file: a save_only_topk_weights adapter needs both."
            )
        indices, weights = state[key], state[base + WEIGHTS]
        if indices.is_floating_point() or indices.dtype == torch.bool:
            raise AdapterLoadError(f"{key} must hold integer indices, found {indices.dtype}.")
        indices = indices.to(torch.long)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_vectors):
            raise AdapterLoadError(
                f"{key} holds indices outside the bank of {num_vectors} vectors; the file does not fit this config."
            )
        if tuple(weights.shape[:-1]) != tuple(indices.shape[:-1]) or weights.shape[-1] != indices.shape[-1] - 1:
            raise AdapterLoadError(
                f"{base + WEIGHTS} has shape {tuple(weights.shape)}, which does not fit {key} {tuple(indices.shape)} "
                f"(the weights leave out the last of the top-k)."
            )
        weights = torch.cat([weights, 1 - weights.sum(-1, keepdim=True)], dim=-1)
        logits = torch.full((*weights.shape[:-1], num_vectors), float("-inf"), device=weights.device, dtype=weights.dtype)
        out[base] = logits.scatter(-1, indices, torch.log(weights))
    return out
