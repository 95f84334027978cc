"""AdaLoRA layers: LoRA in SVD form, `ΔW = B (A ⊙ E) · s / (ranknum + 1e-5)`.

Per adapter `name` a layer holds three parameters (parameter-backed, saved without `.weight`):
`lora_A[name]` `[r, in]` (right singular vectors), `lora_E[name]` `[r, 1]` (singular values) and
`lora_B[name]` `[out, r]` (left singular vectors). `s` is `lora_alpha` (or `r` when alpha <= 0) and
`ranknum` is the initial rank `init_r`, kept as a float tensor that is never saved and never
reduced by pruning. Pruning zeroes entries of `lora_E`; a pruned adapter is saved with only the
kept ranks and, when loaded, the layer is first cut to those ranks (`keep_ranks`).

The operations and their order follow Hugging Face PEFT 0.21.2, so outputs are bit-identical:

    Linear / Conv1D:  y = base(x) + (dropout(x) @ (A ⊙ E)ᵀ @ Bᵀ) · s / (ranknum + 1e-5)
    Conv2d:           y = base(x) + conv2d(dropout(x), (B @ (A ⊙ E) · s / (ranknum + 1e-5)).reshape(W.shape))
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from peft_core import AdapterTensor, BaseTunerLayer, BatchPlan
from peft_core.tuners.layer_containers import dropout_module
from peft_lora import LoraLayer
from peft_lora.layers import is_transformers_conv1d

SUPPORTED_LAYERS = "torch.nn.Linear, torch.nn.Conv2d and transformers' Conv1D"
_HALF = (torch.float16, torch.bfloat16)


class AdaLoraLayer(LoraLayer):
    """What the AdaLoRA Linear and Conv2d layers share (a `LoraLayer`, as in HF, so LoRA's bias modes apply)."""

    adapter_layer_names = ("lora_A", "lora_B", "lora_E")
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "ranknum", "kept_ranks")
    supports_mixed_batch = True
    owner_method = "adalora"  # a LoraLayer, but LoRA's tuner must not add its adapters here
    forward = BaseTunerLayer.forward  # the core's dispatch to the hooks below, not LoRA's own forward

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.lora_E = nn.ParameterDict()
        # The initial rank as a float tensor (HF keeps it as a frozen parameter; it is never saved).
        self.ranknum = nn.ParameterDict()
        # Bool masks of the ranks to keep when saving (set by the model from `rank_pattern`).
        self.kept_ranks: dict[str, torch.Tensor] = {}

    # -- to implement -----------------------------------------------------------------------
    def _a_columns(self) -> int:
        """Columns of `lora_A` (the flattened input size of one output unit)."""
        raise NotImplementedError

    def _delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: Any) -> None:
        """Create adapter `adapter_name` with `r` ranks (HF's RNG use: randn A, E, B, ranknum, then init)."""
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            # note: r == 0 is allowed for AdaLoRA (a matrix pruned to nothing)
            raise ValueError(f"`r` should be a positive integer or 0, but the value passed is {r!r}")
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        p = config.lora_dropout
        self.lora_dropout[adapter_name] = dropout_module(p)
        self.lora_A[adapter_name] = nn.Parameter(torch.randn(r, self._a_columns()))
        self.lora_E[adapter_name] = nn.Parameter(torch.randn(r, 1))
        self.lora_B[adapter_name] = nn.Parameter(torch.randn(self.out_features, r))
        ranknum = torch.randn(1, device="cpu")  # drawn and overwritten, as HF does (same RNG stream)
        ranknum.fill_(float(r))
        self.ranknum[adapter_name] = nn.Parameter(self._on_base(ranknum), requires_grad=False)
        self.scaling[adapter_name] = lora_alpha if lora_alpha > 0 else float(r)
        if config.init_lora_weights:
            self.reset_lora_parameters(adapter_name)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def _on_base(self, t: torch.Tensor) -> torch.Tensor:
        """`t` on the base weight's device, in its dtype when that is a float (HF moves `ranknum` so)."""
        weight = self.get_base_layer().weight
        if weight.device.type == "meta":
            return t
        return t.to(device=weight.device, dtype=weight.dtype if weight.is_floating_point() else t.dtype)

    def reset_lora_parameters(self, adapter_name: str) -> None:
        """`E = 0`, `A, B ~ N(0, 0.02)`: the adapter starts as a no-op."""
        if adapter_name in self.lora_A:
            nn.init.zeros_(self.lora_E[adapter_name])
            nn.init.normal_(self.lora_A[adapter_name], mean=0.0, std=0.02)
            nn.init.normal_(self.lora_B[adapter_name], mean=0.0, std=0.02)

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        super().cast_adapter_dtype(adapter_name, autocast)
        ranknum = self.ranknum[adapter_name] if adapter_name in self.ranknum else None
        if autocast and ranknum is not None and ranknum.dtype in _HALF:
            self.ranknum[adapter_name] = nn.Parameter(ranknum.data.float(), requires_grad=False)

    # -- pruned ranks -----------------------------------------------------------------------
    def keep_ranks(self, adapter_name: str, mask: torch.Tensor) -> None:
        """Cut adapter `adapter_name` to the ranks where `mask` is True (`ranknum` stays the initial rank)."""
        mask = mask.to(torch.bool).reshape(-1)
        current = self.lora_A[adapter_name].shape[0]
        if mask.numel() != current:
            raise ValueError(
                f"Can't cut adapter {adapter_name!r} with a rank mask of {mask.numel()} entries: the layer has "
                f"{current} ranks."
            )
        rank = int(mask.sum())
        for attr, dim in (("lora_A", 0), ("lora_E", 0), ("lora_B", 1)):
            container = getattr(self, attr)
            old = container[adapter_name]
            shape = list(old.shape)
            shape[dim] = rank
            new = torch.empty(shape, dtype=old.dtype, device=old.device)
            if old.device.type != "meta":
                with torch.no_grad():
                    new.copy_(old[mask] if dim == 0 else old[:, mask.to(old.device)])
            container[adapter_name] = nn.Parameter(new, requires_grad=old.requires_grad)
        self.r[adapter_name] = rank
        if self.lora_alpha[adapter_name] <= 0:  # HF rebuilds the layer at the new rank: s = r then
            self.scaling[adapter_name] = float(rank)

    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """As HF saves them: keys `lora_A`/`lora_B`/`lora_E`, cut to the kept ranks of a pruned adapter."""
        out = super().adapter_tensors(adapter_name)
        mask = self.kept_ranks.get(adapter_name)
        if mask is None or adapter_name not in self.lora_A:
            return out
        rank = int(mask.sum())
        cut = []
        for t in out:
            dim = 1 if t.saved_key == "lora_B" else 0
            size = t.tensor.shape[dim]
            if size != rank:  # not cut yet (a trained model; a loaded one is already cut)
                if size != mask.numel():
                    raise ValueError(
                        f"rank_pattern mask for adapter {adapter_name!r} has {mask.numel()} entries but "
                        f"{t.saved_key} has {size} ranks; the rank_pattern does not belong to this adapter."
                    )
                m = mask.to(t.tensor.device)
                t = AdapterTensor(t.saved_key, t.model_key, t.tensor[m] if dim == 0 else t.tensor[:, m])
            cut.append(t)
        return cut

    # -- forward ----------------------------------------------------------------------------
    def adapted_forward(self, x: torch.Tensor, adapter_names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        for name in adapter_names:
            result += self._delta(name, x)
        return result

    def batch_forward(self, plan: BatchPlan, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """One base pass for the whole batch, then each adapter's term on its own rows only."""
        result = self.base_layer(x, *args, **kwargs)
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: {type(self.get_base_layer()).__name__} layer got an input with {x.shape[0]} "
                f"rows but adapter_names has {plan.batch_size} entries; the model reshapes its batch before this "
                f"layer, so run one forward per adapter instead."
            )
        for name in plan.adapter_groups():
            if name not in self.lora_A:
                continue
            rows = plan.rows(name, x.device)
            delta = self._delta(name, x[rows])
            if isinstance(rows, slice):
                result[rows] += delta
            else:
                result[rows] = (result[rows] + delta).to(result.dtype)
        return result

    def _scale(self, name: str) -> tuple[float, torch.Tensor]:
        return self.scaling[name], self.ranknum[name] + 1e-5

    # -- merging ----------------------------------------------------------------------------
    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        weight = self.get_base_layer().weight
        with torch.no_grad():
            delta = self.get_delta_weight(adapter_name)
            if safe_merge:
                merged = weight.data.clone()
                merged += delta
                self._check_finite(merged, adapter_name)
                weight.data = merged
            else:
                weight.data += delta

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        with torch.no_grad():
            self.get_base_layer().weight.data -= self.get_delta_weight(adapter_name)

    def set_scale(self, adapter: str, scale: float) -> None:
        raise TypeError("AdaLoRA layers have no LoRA-style scale to set (their scaling is lora_alpha / init_r).")

    def __repr__(self) -> str:
        return "adalora." + nn.Module.__repr__(self)


class SVDLinear(AdaLoraLayer):
    """AdaLoRA for `nn.Linear` and transformers' GPT-2 `Conv1D` (weight stored (in, out): `fan_in_fan_out`)."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.fan_in_fan_out = is_transformers_conv1d(self.get_base_layer())

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        if isinstance(base, nn.Linear):
            return base.in_features, base.out_features
        in_features, out_features = base.weight.shape  # Conv1D: (in, out)
        return int(in_features), int(out_features)

    def _a_columns(self) -> int:
        return self.in_features

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        a, b, e = self.lora_A[adapter_name], self.lora_B[adapter_name], self.lora_E[adapter_name]
        scaling, ranknum = self._scale(adapter_name)
        product = b @ (a * e)
        return (product.T if self.fan_in_fan_out else product) * scaling / ranknum

    def _delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None = None) -> torch.Tensor:
        a, b, e = self.lora_A[name], self.lora_B[name], self.lora_E[name]
        x = x if x.dtype == a.dtype else x.to(a.dtype)
        scaling, ranknum = self._scale(name)
        return (self.lora_dropout[name](x) @ (a * e).T @ b.T) * scaling / ranknum


class SVDConv2d(AdaLoraLayer):
    """AdaLoRA for `nn.Conv2d`: `lora_A` is `[r, in * kh * kw]`; the delta kernel is `B (A ⊙ E)` reshaped."""

    def __init__(self, base_layer: nn.Module) -> None:
        base = base_layer
        while hasattr(base, "base_layer"):
            base = base.base_layer
        if base.groups != 1:
            raise ValueError(
                f"AdaLoRA does not support grouped convolutions (groups={base.groups}): its delta kernel has the "
                f"shape of an ungrouped one. Exclude this layer from target_modules."
            )
        super().__init__(base_layer)

    def _in_out_features(self, base: nn.Module) -> tuple[int, int]:
        return base.in_channels, base.out_channels

    def _a_columns(self) -> int:
        kernel = self.get_base_layer().kernel_size
        return self.in_features * kernel[0] * kernel[1]

    def _delta_kernel(self, name: str) -> torch.Tensor:
        a, b, e = self.lora_A[name], self.lora_B[name], self.lora_E[name]
        scaling, ranknum = self._scale(name)
        return (b @ (a * e) * scaling / ranknum).reshape(self.get_base_layer().weight.shape)

    def get_delta_weight(self, adapter_name: str) -> torch.Tensor:
        return self._delta_kernel(adapter_name)

    def _delta(self, name: str, x: torch.Tensor, result: torch.Tensor | None = None) -> torch.Tensor:
        a = self.lora_A[name]
        x = x if x.dtype == a.dtype else x.to(a.dtype)
        base = self.get_base_layer()
        return F.conv2d(
            self.lora_dropout[name](x),
            self._delta_kernel(name),
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            groups=base.groups,
        )


def layer_class_for(module: nn.Module) -> type[AdaLoraLayer] | None:
    """The AdaLoRA layer class that wraps `module`, or None if AdaLoRA does not support its type."""
    if isinstance(module, nn.Conv2d):
        return SVDConv2d
    if isinstance(module, nn.Linear) or is_transformers_conv1d(module):
        return SVDLinear
    return None
