"""`RandLoraModel`: puts RandLoRA layers on the targeted modules and owns each adapter's shared bases.

Each adapter gets its own frozen bases, drawn from its own `projection_prng_key` once its layers
exist (their sizes decide the bases' shapes: HF's `_find_dim`, the element-wise largest `(out, in)`
over the adapted layers). They live on the tuner in `randlora_A` / `randlora_B` buffer dicts,
saved as `base_model.randlora_A` / `base_model.randlora_B` when `save_projection` is true.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core import ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.shared_tensors import SharedTensorsTuner, largest_features

from .bases import make_bases
from .config import RandLoraConfig
from .layer import RandLoraLinear


class RandLoraModel(SharedTensorsTuner):
    prefix = "randlora_"
    config_cls = RandLoraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    shared_stores = ("randlora_A", "randlora_B")

    def init_shared_tensors(self, adapter_name: str, autocast: bool) -> None:
        config: RandLoraConfig = self.peft_config[adapter_name]
        layers = [m for m in self.tuner_layers() if isinstance(m, RandLoraLinear) and m.has_adapter(adapter_name)]
        small, large = sorted(largest_features(layers))
        basis_a, basis_b = make_bases(
            config.r, large, small, config.projection_prng_key, sparse=config.sparse, very_sparse=config.very_sparse
        )
        # As in HF: the bases take the adapted layers' device and float dtype, then fp16/bf16 become fp32
        # when adapter dtypes are autocast.
        ref = layers[0].get_base_layer().weight
        if ref.device.type != "meta":
            dtype = ref.dtype if ref.is_floating_point() else basis_a.dtype
            if autocast and dtype in (torch.float16, torch.bfloat16):
                basis_a, basis_b = basis_a.to(dtype), basis_b.to(dtype)
                dtype = torch.float32
            basis_a, basis_b = basis_a.to(ref.device, dtype), basis_b.to(ref.device, dtype)
        self.randlora_A.set(adapter_name, basis_a, persistent=config.save_projection)
        self.randlora_B.set(adapter_name, basis_b, persistent=config.save_projection)

    def _create_and_replace(
        self,
        config: RandLoraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        args = (adapter_name, config.r, config.randlora_alpha, config.randlora_dropout, config.init_weights)
        if isinstance(target, RandLoraLinear):
            target.update_layer(*args)
            return
        if linear_features(target) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by RandLoRA; supported "
                f"are torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, target)
        layer = RandLoraLinear(target, self.randlora_A, self.randlora_B, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
