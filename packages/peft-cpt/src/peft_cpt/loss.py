"""CPT's loss: cross-entropy over the label tokens of the context and of the input, optionally with
earlier examples' labels weighted down (`opt_weighted_loss_type="decay"`).

Types (`cpt_tokens_type_mask` for the context, `input_type_mask` for the input) number the examples:
`4k+1` input template, `4k+2` input, `4k+3` output template, `4k+4` label of example `k`. The input's
types are shifted past the context's, so the input's labels count as the last example.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import CPTConfig

IGNORE = -100


def context_labels_and_types(
    config: CPTConfig, labels: torch.Tensor, input_type_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and types of the whole sequence (context + input); positions that are not label tokens get
    `-100`. `input_type_mask` defaults to 4 everywhere (all input tokens labels of one example)."""
    batch, device = labels.shape[0], labels.device
    if input_type_mask is None:
        input_type_mask = torch.full(labels.shape, 4, dtype=torch.long, device=device)
    prefix_types = torch.tensor(config.cpt_tokens_type_mask, dtype=torch.long, device=device).view(1, -1).repeat(batch, 1)
    input_types = input_type_mask.to(device=device, dtype=torch.long).clone()
    input_types[input_types > 0] += prefix_types.max()
    types = torch.cat((prefix_types, input_types), dim=1)
    prefix_labels = torch.tensor(config.cpt_token_ids, dtype=torch.long, device=device).view(1, -1).repeat(batch, 1)
    full_labels = torch.cat((prefix_labels, labels.to(torch.long)), dim=1)
    full_labels[~((types > 0) & (types % 4 == 0))] = IGNORE
    return full_labels, types


def cpt_loss(logits: torch.Tensor, labels: torch.Tensor, types: torch.Tensor, config: CPTConfig) -> torch.Tensor:
    """Mean next-token cross-entropy over the label positions, each weighted 1 or (with "decay")
    `opt_loss_decay_factor ** m` for the example `m` places before the last."""
    labels, types = labels.to(logits.device), types.to(logits.device)
    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous()
    shift_types = types[..., 1:].contiguous()
    counted = shift_labels != IGNORE
    batch, length, vocab = shift_logits.shape
    loss = F.cross_entropy(
        shift_logits.view(batch * length, vocab), shift_labels.view(batch * length), reduction="none", ignore_index=IGNORE
    ).view(batch, length)
    weights = counted.float()
    if config.opt_weighted_loss_type == "decay":
        for row in range(batch):
            row_types = shift_types[row]
            examples = row_types[(row_types > 0) & (row_types % 4 == 0)].unique()
            decay = torch.ones_like(row_types, dtype=torch.float32)
            value = 1.0
            for example in torch.flip(examples, [0]):  # the last example weighs 1, each earlier one `factor` less
                decay[row_types == example] = value
                value *= config.opt_loss_decay_factor
            weights[row] *= decay
    return (loss[counted] * weights[counted]).mean()
