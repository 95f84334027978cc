"""`VBLoRALinear`: `y = base(x) + B (A (dropout(x)))`, with `A` and `B` assembled from the shared bank.

Logits `vblora_logits_A [r, in / L, N]` and `vblora_logits_B [out / L, r, N]` (`L` = vector length,
`N` = bank size) pick, for every length-`L` piece of the factors, the `topk` bank vectors with the
largest logits and mix them with the softmax of those logits. The bank itself belongs to the tuner
(`VBLoRAModel.vblora_vector_bank`); the layer keeps a plain reference to it, so it is neither saved
nor moved once per layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import UnsupportedOperationError
from peft_core.tuners.layer_containers import dropout_module, refer_to_shared, require_sizes_divisible
from peft_core.tuners.linear_layer import LinearLikeLayer


def mix_bank_vectors(logits: torch.Tensor, bank: torch.Tensor, topk: int) -> torch.Tensor:
    """`[..., N]` logits -> `[..., L]`: the softmax-weighted sum of the `topk` best bank vectors."""
    best, indices = logits.topk(topk, dim=-1)
    weights = F.softmax(best, dim=-1)
    return (weights.unsqueeze(-1) * bank[indices]).sum(-2)


def low_rank_factors(
    logits_a: torch.Tensor, logits_b: torch.Tensor, bank: torch.Tensor, topk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`A [r, in]` and `B [out, r]` from the logits (the same operations as Hugging Face PEFT)."""
    rank = logits_a.shape[0]
    a = mix_bank_vectors(logits_a, bank, topk).reshape(rank, -1)  # [r, in/L, L] -> [r, in]
    b = mix_bank_vectors(logits_b, bank, topk).transpose(1, 2).reshape(-1, logits_b.shape[1])  # -> [out, r]
    return a, b


class VBLoRALinear(LinearLikeLayer):
    """VB-LoRA on `nn.Linear` or transformers' `Conv1D` (`fan_in_fan_out=True`)."""

    adapter_layer_names = ("vblora_logits_A", "vblora_logits_B")
    other_param_names = ("vblora_r", "vblora_topk", "vblora_dropout")
    container_types = {"vblora_dropout": nn.ModuleDict}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, vector_bank: nn.ParameterDict, fan_in_fan_out: bool) -> None:
        super().__init__(base_layer, fan_in_fan_out)
        refer_to_shared(self, vblora_vector_bank=vector_bank)

    def update_layer(
        self,
        adapter_name: str,
        r: int,
        topk: int,
        num_vectors: int,
        vector_length: int,
        dropout: float,
        init_logits_std: float,
    ) -> None:
        why = f"VB-LoRA cuts factors into pieces of {vector_length} values"
        require_sizes_divisible(self, vector_length, "vector_length", why)
        self.vblora_r[adapter_name] = r
        self.vblora_topk[adapter_name] = topk
        self.vblora_dropout[adapter_name] = dropout_module(dropout)
        # Hugging Face PEFT's draws, in its order: A then B, each N(0, std).
        logits_a = torch.zeros(r, self.in_features // vector_length, num_vectors)
        logits_b = torch.zeros(self.out_features // vector_length, r, num_vectors)
        if not logits_a.is_meta:
            nn.init.normal_(logits_a, 0, init_logits_std)
            nn.init.normal_(logits_b, 0, init_logits_std)
        self.vblora_logits_A[adapter_name] = nn.Parameter(logits_a)
        self.vblora_logits_B[adapter_name] = nn.Parameter(logits_b)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- the factors ----------------------------------------------------------------------------
    def _bank(self, adapter_name: str) -> torch.Tensor:
        if adapter_name not in self.vblora_vector_bank:
            raise RuntimeError(
                f"VB-LoRA adapter {adapter_name!r} has no vector bank; the tuner that created it was unloaded. "
                f"Create the adapter again with get_peft_model."
            )
        return self.vblora_vector_bank[adapter_name]

    def factors(self, adapter_name: str, upcast: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """`(A [r, in], B [out, r])` of an adapter (in fp32 when `upcast`)."""
        logits_a, logits_b = self.vblora_logits_A[adapter_name], self.vblora_logits_B[adapter_name]
        if self.training and bool(logits_a[0, 0].isinf().any()):
            raise UnsupportedOperationError(
                f"VB-LoRA adapter {adapter_name!r} was loaded from a save_only_topk_weights file: its logits keep only "
                f"the top-k entries (the rest are -inf), so it can be used for inference or merging, not trained. "
                f"Train from a file saved with save_only_topk_weights=False."
            )
        bank = self._bank(adapter_name).to(logits_a.device)
        if upcast:
            logits_a, logits_b, bank = logits_a.float(), logits_b.float(), bank.float()
        return low_rank_factors(logits_a, logits_b, bank, self.vblora_topk[adapter_name])

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        logits = self.vblora_logits_A[adapter_name]
        # CPU half-precision matmuls are slow and imprecise: compute in fp32 and cast back, as HF does.
        upcast = logits.device.type == "cpu" and logits.dtype in (torch.float16, torch.bfloat16)
        a, b = self.factors(adapter_name, upcast=upcast)
        delta = b @ a
        if self.fan_in_fan_out:
            delta = delta.T
        return delta.to(logits.dtype) if upcast else delta

    def _delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        a, b = self.factors(adapter_name)
        x = x.to(self._bank(adapter_name).dtype)
        return F.linear(F.linear(self.vblora_dropout[adapter_name](x), a), b)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        held = self.vblora_logits_A
        return self.additive_forward(x, args, kwargs, held, self._delta, "a VB-LoRA layer", cast_to="input")
