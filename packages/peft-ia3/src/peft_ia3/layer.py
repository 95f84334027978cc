"""(IA)³ layers: a learned vector scales a layer's outputs, or (feed-forward layers) its inputs.

Shapes follow Hugging Face PEFT so files are interchangeable:
- Linear / GPT-2 `Conv1D`: `[out, 1]` (outputs) or `[1, in]` (inputs, feed-forward);
- Conv2d / Conv3d: `[1, out, 1, 1(, 1)]` or `[1, in, 1, 1(, 1)]`.

Whether an adapter scales inputs or outputs is kept per adapter, so two adapters with different
`feedforward_modules` can share a layer.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.linear_targets import is_transformers_conv1d as is_conv1d

# Unmerging divides by the vector; HF adds this to avoid dividing by zero (so unmerge is approximate).
UNMERGE_EPS = 1e-8


class IA3Layer(BaseTunerLayer):
    """Shared bookkeeping: `ia3_l[name]` is the vector, `ia3_feedforward[name]` where it applies."""

    adapter_layer_names = ("ia3_l",)
    other_param_names = ("ia3_feedforward",)
    container_types = {}
    supports_mixed_batch = True

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self.in_features, self.out_features = self._features(self.get_base_layer())

    @staticmethod
    def _features(base: nn.Module) -> tuple[int, int]:
        raise NotImplementedError

    def _vector_shape(self, is_feedforward: bool) -> tuple[int, ...]:
        raise NotImplementedError

    def update_layer(self, adapter_name: str, is_feedforward: bool, init_ia3_weights: bool = True) -> None:
        # Always drawn from the global RNG first (as HF does), so a seeded random init matches HF's.
        vector = torch.randn(self._vector_shape(is_feedforward))
        if init_ia3_weights:
            vector.fill_(1.0)
        self.ia3_l[adapter_name] = nn.Parameter(vector)
        self.ia3_feedforward[adapter_name] = bool(is_feedforward)
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- scaling helpers --------------------------------------------------------------------------
    def _scalings(self, names: list[str]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Products of the input (feed-forward) and output vectors of `names`, in forward layout."""
        scale_in = scale_out = None
        for name in names:
            if name not in self.ia3_l:
                continue
            vector = self._forward_view(self.ia3_l[name])
            if self.ia3_feedforward[name]:
                scale_in = vector if scale_in is None else scale_in * vector
            else:
                scale_out = vector if scale_out is None else scale_out * vector
        return scale_in, scale_out

    def _forward_view(self, vector: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _scale_input(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _scale_output(self, result: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- forward ----------------------------------------------------------------------------------
    def adapted_forward(self, x: torch.Tensor, adapter_names: Sequence[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        scale_in, scale_out = self._scalings(adapter_names)
        if scale_in is not None:
            x = self._scale_input(x, scale_in)
        result = self.base_layer(x, *args, **kwargs)
        if scale_out is not None:
            result = self._scale_output(result, scale_out)
        return result

    def batch_forward(self, plan: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: {type(self).__name__} got an input with {x.shape[0]} rows but "
                f"adapter_names has {plan.batch_size} entries; the adapted layer must see the batch dimension first."
            )
        groups = [(name, plan.rows(name, x.device)) for name in plan.adapter_groups() if name in self.ia3_l]
        scaled_input = x
        for name, rows in groups:
            if self.ia3_feedforward[name]:
                if scaled_input is x:
                    scaled_input = x.clone()
                scaled_input[rows] = self._scale_input(x[rows], self._forward_view(self.ia3_l[name]))
        result = self.base_layer(scaled_input, *args, **kwargs)
        out_groups = [(name, rows) for name, rows in groups if not self.ia3_feedforward[name]]
        if out_groups:
            result = result.clone()
            for name, rows in out_groups:
                result[rows] = self._scale_output(result[rows], self._forward_view(self.ia3_l[name]))
        return result

    # -- merging ----------------------------------------------------------------------------------
    def _weight_scale(self, adapter_name: str) -> torch.Tensor:
        """The vector shaped to multiply `base_layer.weight` in its storage layout."""
        raise NotImplementedError

    def merge_adapter_weights(self, adapter_name: str, safe_merge: bool) -> None:
        base = self.get_base_layer()
        vector = self.ia3_l[adapter_name].detach()
        weight = torch.mul(base.weight.data, self._weight_scale(adapter_name)).to(base.weight.dtype)
        bias = None
        if not self.ia3_feedforward[adapter_name] and base.bias is not None:
            bias = torch.mul(base.bias.data, vector.reshape(base.bias.shape)).to(base.bias.dtype)
        self.write_merged(adapter_name, safe_merge, weight, bias)

    def unmerge_adapter_weights(self, adapter_name: str) -> None:
        base = self.get_base_layer()
        vector = self.ia3_l[adapter_name].detach()
        base.weight.data = torch.div(base.weight.data, self._weight_scale(adapter_name) + UNMERGE_EPS).to(
            base.weight.dtype
        )
        if not self.ia3_feedforward[adapter_name] and base.bias is not None:
            scale = vector.reshape(base.bias.shape) + UNMERGE_EPS
            base.bias.data = torch.div(base.bias.data, scale).to(base.bias.dtype)


class IA3Linear(IA3Layer):
    """(IA)³ on `nn.Linear` or transformers' GPT-2 `Conv1D` (`fan_in_fan_out=True`)."""

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool = False) -> None:
        super().__init__(base_layer)
        self.fan_in_fan_out = fan_in_fan_out

    @staticmethod
    def _features(base: nn.Module) -> tuple[int, int]:
        if is_conv1d(base):
            in_features, out_features = base.weight.shape
            return int(in_features), int(out_features)
        return base.in_features, base.out_features

    def _vector_shape(self, is_feedforward: bool) -> tuple[int, ...]:
        return (1, self.in_features) if is_feedforward else (self.out_features, 1)

    def _forward_view(self, vector: torch.Tensor) -> torch.Tensor:
        return vector.flatten()

    def _scale_input(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return (x.to(scale.dtype) * scale).to(x.dtype)

    def _scale_output(self, result: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return (result * scale).to(result.dtype)

    def _weight_scale(self, adapter_name: str) -> torch.Tensor:
        vector = self.ia3_l[adapter_name].detach()
        return vector.T if self.fan_in_fan_out else vector


class IA3Conv(IA3Layer):
    """(IA)³ on `nn.Conv2d` / `nn.Conv3d` (grouped convolutions included)."""

    @staticmethod
    def _features(base: nn.Module) -> tuple[int, int]:
        return base.in_channels, base.out_channels

    def _vector_shape(self, is_feedforward: bool) -> tuple[int, ...]:
        features = self.in_features if is_feedforward else self.out_features
        return (1, features) + (1,) * (self.get_base_layer().weight.dim() - 2)

    def _forward_view(self, vector: torch.Tensor) -> torch.Tensor:
        return vector

    def _scale_input(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return (x.to(scale.dtype) * scale).to(self.get_base_layer().weight.dtype)

    def _scale_output(self, result: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return (result.to(scale.dtype) * scale).to(result.dtype)

    def _weight_scale(self, adapter_name: str) -> torch.Tensor:
        vector = self.ia3_l[adapter_name].detach()
        if not self.ia3_feedforward[adapter_name]:
            return vector.transpose(0, 1)  # [out, 1, k...]: scales each output filter
        base = self.get_base_layer()
        if base.groups == 1:
            return vector  # [1, in, k...]: scales each input channel
        # Grouped: weight is [out, in/groups, k...]; output channel o sees input channels of its group.
        in_per_group = base.in_channels // base.groups
        out_per_group = base.out_channels // base.groups
        kernel = vector.shape[2:]
        grouped = vector.reshape(base.groups, 1, in_per_group, *kernel)
        grouped = grouped.expand(base.groups, out_per_group, in_per_group, *kernel)
        return grouped.reshape(base.out_channels, in_per_group, *kernel)
