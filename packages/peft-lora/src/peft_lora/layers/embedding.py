"""LoRA for `nn.Embedding` (parameter-backed `lora_embedding_A` [r, num], `lora_embedding_B` [dim, r]).

    y = emb(x) + (embedding(x, Aᵀ) @ Bᵀ) · s     (the base embedding's padding_idx, max_norm, ... apply)
    merged:  W += s·(B@A)ᵀ

An embedding with a built-in scale (`embed_scale`, e.g. Gemma 3) scales the LoRA term too. As in
Hugging Face PEFT, `lora_dropout` is not applied to embeddings and `lora_bias` is not supported.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from peft_core.tuners.embedding_lookup import embed_like
from peft_core.tuners.precision import round_back, upcast_half_on_cpu

from .. import init as lora_init
from .base import LoraLayer, _add, _scaled
from .dora import embedding_weight_norm, lora_product


class Embedding(LoraLayer):
    _cast_delta_in_unsafe_merge = True

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.lora_embedding_A = nn.ParameterDict()
        self.lora_embedding_B = nn.ParameterDict()

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        return base.num_embeddings, base.embedding_dim

    def _factor_container(self) -> nn.Module:
        return self.lora_embedding_A

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        if config.lora_bias:
            raise ValueError(f"lora_bias={config.lora_bias} is not supported for {type(self).__name__}.")
        self._register_settings(adapter_name, r, lora_alpha, config)
        self.lora_embedding_A[adapter_name] = nn.Parameter(torch.randn((r, self.in_features)))
        self.lora_embedding_B[adapter_name] = nn.Parameter(torch.randn((self.out_features, r)))
        family = self.lora_init[adapter_name]
        if family == "mica":
            base_weight = self.get_base_layer().weight
            if not (base_weight.is_meta or self.lora_embedding_B[adapter_name].is_meta):
                a, b = lora_init.mica(base_weight.T, r)
                self.lora_embedding_A[adapter_name].data = a
                self.lora_embedding_B[adapter_name].data = b
        elif family != "random":  # every other init: A = 0, B ~ N(0, 1) (HF's embedding reset)
            nn.init.zeros_(self.lora_embedding_A[adapter_name])
            nn.init.normal_(self.lora_embedding_B[adapter_name])
        self._finish_update(adapter_name)

    def _initial_magnitude(self, name: str) -> torch.Tensor:
        lora_a, lora_b = self.lora_embedding_A[name], self.lora_embedding_B[name]
        weight = self.get_base_layer().weight.to(lora_a.device)
        return embedding_weight_norm(weight, lora_product(lora_a, lora_b), self.scaling[name])

    # -- math -------------------------------------------------------------------------------
    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        factors = self.lora_embedding_A[adapter_name], self.lora_embedding_B[adapter_name]
        (weight_a, weight_b), half = upcast_half_on_cpu(*factors)
        return round_back((weight_b @ weight_a).T * self.scaling[adapter_name], half)

    def _embed(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return embed_like(self.get_base_layer(), x, weight)

    def _embed_scale(self) -> torch.Tensor | None:
        base = self.get_base_layer()
        scale = getattr(base, "embed_scale", None)
        if scale is None:
            return None
        if isinstance(scale, (int, float)):
            return torch.tensor(scale, device=base.weight.device, dtype=base.weight.dtype)
        if isinstance(scale, torch.Tensor) and scale.numel() == 1:
            return scale
        return None

    def _lora_output(self, name: str, x: torch.Tensor) -> torch.Tensor:
        after_a = self._embed(x, self.lora_embedding_A[name].T)
        return after_a @ self.lora_embedding_B[name].T

    def _delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None) -> torch.Tensor:
        if self.use_dora[name]:
            mag_norm_scale, dora_result = self._dora_parts(name, x)
            return (mag_norm_scale - 1) * result + dora_result
        out = _scaled(self._lora_output(name, x), self.scaling[name])
        scale = self._embed_scale()
        return out if scale is None else out.mul_(scale.to(out.dtype))

    def _apply_adapter(self, name: str, x: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
        if not self.use_dora[name]:
            return _add(result, self._delta(name, x, result))
        mag_norm_scale, dora_result = self._dora_parts(name, x)
        return mag_norm_scale * result + dora_result

    def _dora_parts(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lora_a_t = self.lora_embedding_A[name].T  # [num, r]
        lora_b_t = self.lora_embedding_B[name].T  # [r, dim]
        scaling = self.scaling[name]
        lora_weight = (lora_a_t @ lora_b_t).T
        weight_norm = embedding_weight_norm(self.get_base_layer().weight, lora_weight.detach(), scaling).detach()
        mag_norm_scale = self.lora_magnitude_vector[name].weight / weight_norm
        dora_result = mag_norm_scale * (self._embed(x, lora_a_t) @ lora_b_t) * scaling
        scale = self._embed_scale()
        if scale is not None:
            dora_result = dora_result * scale.to(dora_result.dtype)
        return mag_norm_scale, dora_result

    def _dora_merge_norm(self, name: str, base_weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return embedding_weight_norm(base_weight, delta.T, 1)

    def _dora_factor(self, name: str, norm: torch.Tensor) -> torch.Tensor:
        return (self.lora_magnitude_vector[name].weight / norm).view(1, -1)

    def __repr__(self) -> str:
        return "lora." + super().__repr__()
