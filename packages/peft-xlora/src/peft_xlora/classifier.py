"""The X-LoRA classifier and what is done with its output.

`XLoraClassifier` maps the last hidden states `[batch, tokens, hidden]` to scalings `[batch, tokens,
n_layers, n_experts]`: one weight per token, adapted layer and expert (the same for every layer unless
`layerwise_scalings`), softmaxed over the experts with a temperature when `enable_softmax`. Each layer
then takes its slice and, with `top_k_lora`, keeps only the k largest (renormalised by a softmax over
them with `enable_softmax_topk`).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import XLoraConfig


class XLoraClassifier(nn.Module):
    def __init__(self, config: XLoraConfig, n_experts: int, n_layers: int, device: torch.device | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.config = config  # shared with the adapter's config: set_topk_lora & co. are saved with it
        self.n_experts, self.n_layers = n_experts, n_layers
        outputs = n_experts * n_layers if config.layerwise_scalings else n_experts
        layers: list[nn.Module] = []
        width = config.hidden_size
        if config.xlora_depth > 1:  # Hugging Face PEFT's layout (and so its keys: layers.0, layers.3, ...)
            for _ in range(config.xlora_depth - 1):
                layers += [nn.Linear(width, config.xlora_size, bias=True), nn.ReLU()]
                if config.xlora_dropout_p > 0.0:
                    layers.append(nn.Dropout(p=config.xlora_dropout_p))
                width = config.xlora_size
        layers.append(nn.Linear(width, outputs, bias=True))
        self.layers = nn.Sequential(*layers).to(device=device, dtype=dtype)
        self.log_scalings: list[torch.Tensor] = []
        self.scalings_logging = False

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[-1].weight.dtype

    def dummy_scalings(self, batch: int, tokens: int, device: torch.device) -> torch.Tensor:
        """The constant scalings of the scaling pass (`scaling_pass_value` everywhere)."""
        return torch.full((batch, tokens, self.n_layers, self.n_experts), self.config.scaling_pass_value).to(
            device=device, dtype=self.dtype
        )

    def forward(self, hidden_state: torch.Tensor) -> torch.Tensor:
        batch, tokens = hidden_state.shape[:2]
        logits = self.layers(hidden_state.to(self.dtype))
        if not self.config.layerwise_scalings:
            logits = logits.unsqueeze(2).expand(-1, -1, self.n_layers, -1)
        scalings = logits.reshape(batch, tokens, self.n_layers, self.n_experts)
        if self.config.enable_softmax:
            scalings = torch.softmax(scalings / self.config.softmax_temperature, dim=-1)
        if self.scalings_logging:
            self.log_scalings.append(scalings)
        return scalings

    def bucketed_log(self) -> dict[int, tuple[list[int], list[torch.Tensor]]]:
        """The logged scalings by sequence length: length -> (positions in the log, tensors)."""
        buckets: dict[int, tuple[list[int], list[torch.Tensor]]] = {}
        for i, scaling in enumerate(self.log_scalings):
            positions, tensors = buckets.setdefault(scaling.shape[1], ([], []))
            positions.append(i)
            tensors.append(scaling)
        return buckets


def layer_scalings(scalings: torch.Tensor, layer: int, config: XLoraConfig) -> torch.Tensor:
    """`[batch, tokens, n_experts]` weights of one layer, with the top-k selection and its softmax."""
    weights = scalings[:, :, layer, :]
    if config.top_k_lora is not None:
        _, best = torch.topk(weights, k=config.top_k_lora, dim=-1)
        keep = torch.zeros_like(weights, dtype=torch.bool).scatter_(-1, best, True)
        weights = weights * keep.to(weights.dtype)
    if config.enable_softmax_topk:
        nonzero = weights != 0
        weights = torch.softmax(weights.masked_fill(~nonzero, float("-inf")), dim=-1).masked_fill(~nonzero, 0.0)
    return weights
