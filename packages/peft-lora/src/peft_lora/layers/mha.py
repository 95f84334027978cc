"""LoRA for `nn.MultiheadAttention` (query/key/value of one size: `_qkv_same_embed_dim`).

torch's attention reads `in_proj_weight` (a bare parameter, `[3·embed, embed]`) and `out_proj.weight`
directly instead of calling layers, so the adapter can't add to a layer's output: each call runs the
base module with both weights replaced by `W + s·B@A` (`torch.func.functional_call`, differentiable
in the factors). Both projections are adapted, with the same rank and alpha, as in Hugging Face PEFT:

    in_proj:   lora_A [r, embed], lora_B [3·embed, r]          saved as lora_A.weight / lora_B.weight
    out_proj:  lora_A [r, embed], lora_B [embed, r]            saved as base_layer.out_proj.lora_A.weight / ...

Hugging Face PEFT 0.21.2 adds the out_proj update twice (its `merge` writes `W + ΔW` and then merges
`ΔW` again; huggingface/peft PR #3774), in the forward pass and in `merge_and_unload`. This layer adds it
once: files are the same, and outputs agree with Hugging Face PEFT whenever the out_proj update is zero.
DoRA, aLoRA, data-driven initialisations and mixed-adapter batches are refused, as there.
"""

from __future__ import annotations

from typing import Any

import torch
from peft_core import AdapterTensor, current_batch_plan
from peft_core.errors import ConfigError
from peft_core.tuners.construction import new_module, register_module
from peft_core.tuners.precision import round_back, upcast_half_on_cpu
from torch import nn

from .. import init as lora_init
from ..config import init_family
from .base import LoraLayer

_OUT = "base_layer.out_proj."


class MultiheadAttention(LoraLayer):
    adapter_layer_names = (*LoraLayer.adapter_layer_names, "lora_out_proj_A", "lora_out_proj_B")
    supports_mixed_batch = False

    def __init__(self, base_layer: nn.Module) -> None:
        base = base_layer
        if not getattr(base, "_qkv_same_embed_dim", True):
            raise ConfigError(
                "LoRA on nn.MultiheadAttention supports query, key and value of the same size only "
                "(kdim == vdim == embed_dim); target the layers that project them instead."
            )
        if not isinstance(getattr(base, "out_proj", None), nn.Linear):
            raise ConfigError("LoRA on nn.MultiheadAttention needs its out_proj to be an nn.Linear.")
        super().__init__(base_layer)
        register_module(self, "lora_out_proj_A", new_module(nn.ModuleDict))
        register_module(self, "lora_out_proj_B", new_module(nn.ModuleDict))

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        return base.embed_dim, 3 * base.embed_dim

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        problems = []
        if config.use_dora:
            problems.append("DoRA")
        if getattr(config, "alora_invocation_tokens", None) is not None:
            problems.append("aLoRA")
        if config.lora_bias:
            problems.append("lora_bias")
        if init_family(config.init_lora_weights) not in ("default", "random", "gaussian"):
            problems.append(f"init_lora_weights={config.init_lora_weights!r}")
        if problems:
            raise ConfigError(
                f"LoRA on nn.MultiheadAttention does not support {', '.join(problems)}; change the config or "
                f"don't target the attention module."
            )
        self._register_settings(adapter_name, r, lora_alpha, config)
        embed = self.in_features
        # Hugging Face PEFT draws out_proj's factors, then in_proj's, then out_proj's again (kept): the same
        # draws from the default generator give the same initial factors
        self._new_factors(embed, r, embed, config)
        self.lora_A[adapter_name], self.lora_B[adapter_name] = self._new_factors(embed, r, self.out_features, config)
        out_a, out_b = self._new_factors(embed, r, embed, config)
        self.lora_out_proj_A[adapter_name], self.lora_out_proj_B[adapter_name] = out_a, out_b
        self._finish_update(adapter_name)

    def _new_factors(self, fan_in: int, r: int, fan_out: int, config: Any) -> tuple[nn.Linear, nn.Linear]:
        family = init_family(config.init_lora_weights)
        if family == "default":
            return lora_init.default_lora_factors(fan_in, r, fan_out, False)
        lora_a = lora_init.new_linear(fan_in, r, bias=False)
        lora_b = lora_init.new_linear(r, fan_out, bias=False)
        if family == "gaussian":
            lora_init.gaussian_(lora_a.weight, r)
            if not lora_b.weight.is_meta:
                with torch.no_grad():
                    lora_b.weight.zero_()
        return lora_a, lora_b

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """out_proj's factors under Hugging Face PEFT's keys (its out_proj is a nested LoRA layer)."""
        out = []
        for t in super().adapter_tensors(adapter_name):
            for attr, saved in (("lora_out_proj_A", "lora_A"), ("lora_out_proj_B", "lora_B")):
                if t.saved_key.startswith(attr + "."):
                    t = AdapterTensor(_OUT + saved + t.saved_key[len(attr) :], t.model_key, t.tensor)
            out.append(t)
        return out

    # -- math -------------------------------------------------------------------------------
    @staticmethod
    def _factor_delta(lora_a: nn.Linear, lora_b: nn.Linear, scaling: float) -> torch.Tensor:
        (weight_b, weight_a), half = upcast_half_on_cpu(lora_b.weight, lora_a.weight)
        return round_back((weight_b @ weight_a) * scaling, half)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The update of `in_proj_weight`."""
        return self._factor_delta(self.lora_A[adapter_name], self.lora_B[adapter_name], self.scaling[adapter_name])

    def out_proj_delta_weight(self, adapter_name: str) -> torch.Tensor:
        """The update of `out_proj.weight`."""
        return self._factor_delta(
            self.lora_out_proj_A[adapter_name], self.lora_out_proj_B[adapter_name], self.scaling[adapter_name]
        )

    def _adapted_weights(self, names: list[str]) -> dict[str, torch.Tensor]:
        base = self.get_base_layer()
        dtype = base.out_proj.weight.dtype
        in_weight, out_weight = base.in_proj_weight, base.out_proj.weight
        for name in names:
            in_weight = in_weight + self.get_delta_weight(name).to(dtype)
            out_weight = out_weight + self.out_proj_delta_weight(name).to(dtype)
        return {"in_proj_weight": in_weight, "out_proj.weight": out_weight}

    def forward(self, query: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        dtype = query.dtype
        if self._unmerge_if_disabled() or self.merged:
            result = self.base_layer(query, *args, **kwargs)
        else:
            if current_batch_plan() is not None:
                raise ValueError(
                    "LoRA on nn.MultiheadAttention can't run a mixed-adapter batch; run one forward per adapter."
                )
            active = [n for n in self._active_adapter if n in self.lora_A]
            if not active:
                result = self.base_layer(query, *args, **kwargs)
            else:
                result = torch.func.functional_call(
                    self.base_layer, self._adapted_weights(active), (query, *args), kwargs, tie_weights=False
                )
        return (result[0].to(dtype), result[1].to(dtype) if result[1] is not None else None)

    # -- merging ----------------------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        dtype = base.out_proj.weight.dtype
        with torch.no_grad():
            new_in = base.in_proj_weight.data + self.get_delta_weight(adapter_name).to(dtype)
            new_out = base.out_proj.weight.data + self.out_proj_delta_weight(adapter_name).to(dtype)
            if safe_merge:
                self._check_finite(new_in, adapter_name)
                self._check_finite(new_out, adapter_name)
            base.in_proj_weight.data = new_in
            base.out_proj.weight.data = new_out

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        dtype = base.out_proj.weight.dtype
        with torch.no_grad():
            base.in_proj_weight.data -= self.get_delta_weight(adapter_name).to(dtype)
            base.out_proj.weight.data -= self.out_proj_delta_weight(adapter_name).to(dtype)

    def __repr__(self) -> str:
        return "lora." + super().__repr__()


def dispatch_multihead_attention(request: Any) -> type[LoraLayer] | None:
    """Layer dispatcher (peft-core's registry, method "lora") for `nn.MultiheadAttention`."""
    return MultiheadAttention if isinstance(request.module, nn.MultiheadAttention) else None
