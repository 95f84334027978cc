"""The shadow path's own task losses (on the initial shadow state), as transformers computes them."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shifted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy (labels shifted by one; -100 ignored)."""
    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous().to(logits.device)
    return F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1), ignore_index=-100)


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Regression (one label), single-label or multi-label classification, picked as transformers does."""
    num_labels = logits.shape[-1]
    labels = labels.to(logits.device)
    if num_labels == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).view(-1))
    if labels.dtype in (torch.long, torch.int):
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Each row's last non-padding position (left or right padding)."""
    if attention_mask is None:
        return hidden[:, -1, :]
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    last = (attention_mask.ne(0) * positions).argmax(dim=-1).to(hidden.device)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
