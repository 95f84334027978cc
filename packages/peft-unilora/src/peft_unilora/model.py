"""`UniLoraModel`: owns each adapter's shared trained vector `θ` and assigns every layer its indices.

`θ` (`unilora_theta_d[adapter]`, `[theta_d_length]`) is created before the layers (Hugging Face
PEFT's order of random draws), then the layers, then the indices over all of them at once
(`indices.balanced_indices`) and the per-entry scales. `θ` is trained when its adapter is active,
saved as `base_model.unilora_theta_d`, and follows the adapted layers' device (and dtype, before the
usual fp32 upcast of half-precision adapters).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out

from .config import UniLoraConfig
from .indices import balanced_indices, inverse_sqrt_uses
from .layer import UniLoraLinear


class UniLoraModel(BaseTuner):
    prefix = "unilora_"
    config_cls = UniLoraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    uses_shared_state = True  # the vector bank every layer indexes lives on the tuner

    def inject_adapter(self, model: nn.Module, adapter_name: str, **kwargs: Any) -> None:
        """BaseTuner's injection (same keyword arguments), with `θ` made before and the indices after."""
        if "unilora_theta_d" not in self._modules:
            self.unilora_theta_d = nn.ParameterDict()
        config: UniLoraConfig = self.peft_config[adapter_name]
        self.unilora_theta_d[adapter_name] = nn.Parameter(self._initial_theta(config))
        try:
            super().inject_adapter(model, adapter_name, **kwargs)
            layers = [m for m in self.tuner_layers() if isinstance(m, UniLoraLinear) and m.has_adapter(adapter_name)]
            self._assign_indices(adapter_name, layers)
            self._place_theta(adapter_name, layers, kwargs.get("autocast_adapter_dtype", True))
        except BaseException:
            del self.unilora_theta_d[adapter_name]
            raise
        self._refresh_trainable(freeze_base=False)

    @staticmethod
    def _initial_theta(config: UniLoraConfig) -> torch.Tensor:
        if config.init_weights:
            theta = torch.empty(config.theta_d_length)
            nn.init.uniform_(theta, -config.init_theta_d_bound, config.init_theta_d_bound)
            return theta
        return torch.randn(config.theta_d_length)

    def _assign_indices(self, adapter_name: str, layers: list[UniLoraLinear]) -> None:
        config: UniLoraConfig = self.peft_config[adapter_name]
        sizes = [(layer.unilora_indices_A[adapter_name].shape, layer.unilora_indices_B[adapter_name].shape) for layer in layers]
        total = sum(a.numel() + b.numel() for a, b in sizes)
        indices = balanced_indices(total, config.theta_d_length, config.proj_seed)
        scale = inverse_sqrt_uses(indices, config.theta_d_length)
        start = 0
        for layer, (shape_a, shape_b) in zip(layers, sizes):
            indices_a = indices[start : start + shape_a.numel()].view(shape_a).clone()
            start += shape_a.numel()
            indices_b = indices[start : start + shape_b.numel()].view(shape_b).clone()
            start += shape_b.numel()
            layer.set_indices(adapter_name, indices_a, indices_b, config.save_indices)
            layer.set_scales(adapter_name, scale[indices_a], scale[indices_b], config.save_indices)

    def _place_theta(self, adapter_name: str, layers: list[UniLoraLinear], autocast: bool) -> None:
        weight = layers[0].get_base_layer().weight
        theta = self.unilora_theta_d[adapter_name]
        if weight.is_meta:
            return
        dtype = weight.dtype if weight.is_floating_point() else theta.dtype
        if autocast and dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32
        if theta.device != weight.device or theta.dtype != dtype:
            self.unilora_theta_d[adapter_name] = nn.Parameter(theta.data.to(weight.device, dtype))

    def _create_and_replace(
        self, config: UniLoraConfig, adapter_name: str, target: nn.Module,
        target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = (adapter_name, config.r, config.unilora_dropout, config.theta_d_length, config.save_indices)
        if isinstance(target, UniLoraLinear):
            target.update_layer(*args)
            return
        base = self.wrapped_base(target, current_key)
        if linear_features(base) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by Uni-LoRA; supported are "
                f"torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, base)
        layer = UniLoraLinear(target, self.unilora_theta_d, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)

    # -- the shared vectors ------------------------------------------------------------------
    def _refresh_trainable(self, freeze_base: bool = True, adapter_modules: Sequence | None = None) -> None:
        super()._refresh_trainable(freeze_base=freeze_base, adapter_modules=adapter_modules)
        if "unilora_theta_d" not in self._modules:
            return
        active = self.active_adapters
        inference = all(self.peft_config[n].inference_mode for n in active if n in self.peft_config)
        for name, theta in self.unilora_theta_d.items():
            theta.requires_grad_(name in active and not inference)

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        if "unilora_theta_d" in self._modules and adapter_name in self.unilora_theta_d:
            theta = self.unilora_theta_d[adapter_name]
            out.append(AdapterTensor("unilora_theta_d", f"unilora_theta_d.{adapter_name}", theta))
        return out

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        if adapter_name in self.unilora_theta_d:
            del self.unilora_theta_d[adapter_name]

    def _unload_tuner_state(self) -> None:
        if "unilora_theta_d" in self._modules:
            self.unilora_theta_d.clear()
