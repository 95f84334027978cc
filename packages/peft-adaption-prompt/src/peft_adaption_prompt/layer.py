"""`AdaptedAttention`: an attention module whose queries also attend to a learned, gated prompt.

For adapter `a` with prompt `P_a [1, L, hidden]` and gate `g_a` (zero at the start):
`out = attention(x) + proj(g_a · softmax(q Kᵀ / √d) V)`, where `q` are the call's query states and `K`,
`V` the prompt's keys and values through the attention's own projections (see `attention.py`). The
prompt tokens carry no position, so they are the same for every position and every cached step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import BaseTunerLayer, current_batch_plan

from .attention import Architecture, output_projection, prompt_keys_values, query_states


class AdaptedAttention(BaseTunerLayer):
    adapter_layer_names = ("adaption_prompt", "adaption_gate")
    other_param_names = ("adapter_len",)
    container_types = {}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module, architecture: Architecture) -> None:
        super().__init__(base_layer)
        self.architecture = architecture

    def _reference_weight(self) -> torch.Tensor:
        attention = self.get_base_layer()
        return attention.c_proj.weight if self.architecture.name == "gpt2" else attention.q_proj.weight

    def update_layer(self, adapter_name: str, adapter_len: int) -> None:
        attention = self.get_base_layer()
        reference = self._reference_weight()
        dtype = reference.dtype if reference.is_floating_point() else torch.float32
        # N(0, 1) prompt (LLaMA-Adapter's nn.Embedding start), gate 0: a no-op until trained
        prompt = torch.empty(1, adapter_len, attention.config.hidden_size, device=reference.device, dtype=dtype)
        if not prompt.is_meta:
            prompt.normal_()
        self.adaption_prompt[adapter_name] = nn.Parameter(prompt)
        self.adaption_gate[adapter_name] = nn.Parameter(torch.zeros(1, device=reference.device, dtype=dtype))
        self.adapter_len[adapter_name] = adapter_len

    def _extra_output(self, adapter_name: str, query: torch.Tensor, embed_dim: int) -> torch.Tensor:
        """The gated attention over adapter `adapter_name`'s prompt, `[batch, tokens, hidden]`."""
        attention = self.get_base_layer()
        prompt, gate = self.adaption_prompt[adapter_name], self.adaption_gate[adapter_name]
        batch, tokens = query.shape[0], query.shape[2]
        weight_dtype = self._reference_weight().dtype
        if prompt.dtype != weight_dtype and weight_dtype.is_floating_point:
            prompt = prompt.to(weight_dtype)  # fp32 adapter tensors on a half-precision base
        keys, values = prompt_keys_values(self.architecture, attention, prompt, batch, embed_dim)
        dtype = query.dtype
        scores = torch.matmul(query, keys.transpose(2, 3).to(dtype)) / math.sqrt(attention.head_dim)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)
        gated = (gate if gate.dtype == dtype else gate.to(dtype)) * probs
        out = torch.matmul(gated, values.to(gated.dtype)).transpose(1, 2).reshape(batch, tokens, -1)
        return output_projection(self.architecture, attention, out)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        outputs = self.base_layer(*args, **kwargs)
        if self._unmerge_if_disabled():
            return outputs
        if kwargs.get("output_attention", False):
            raise NotImplementedError("output_attention is not supported with adaption prompts.")
        hidden_states = args[0] if args else kwargs["hidden_states"]
        plan = current_batch_plan()
        names = (
            [n for n in plan.adapter_groups() if n in self.adaption_prompt]
            if plan is not None
            else [n for n in self.active_adapters if n in self.adaption_prompt]
        )
        if not names:
            return outputs
        attended, rest = outputs[0], tuple(outputs[1:])
        dtype = attended.dtype
        query = query_states(self.architecture, self.get_base_layer(), hidden_states, kwargs)
        result = attended
        if plan is not None:
            result = attended.clone()
            for name in names:
                rows = plan.rows(name, attended.device)
                result[rows] = (result[rows] + self._extra_output(name, query[rows], attended.shape[2])).to(dtype)
        else:
            for name in names:
                result = result + self._extra_output(name, query, attended.shape[2])
        return (result.to(query.dtype), *rest)
