"""`FrodModel`: FRoD layers on the targeted modules, and the per-role bases they share.

When an adapter's first layer is created, every module its config targets (an `nn.Linear`, a
`Conv1D`, or a FRoD layer wrapping one) is grouped by role and block index, and each role gets its
basis `V`, sparse positions and size (see `bases`). They live in the tuner's `frod_V`,
`frod_s_indices` and `frod_s_size` (one buffer dict per role, entries per adapter) and are saved as
`base_model.frod_V.<role>` ... when `save_projection` is true.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner, BaseTunerLayer, ConfigError
from peft_core.errors import unsupported_target
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.linear_targets import is_transformers_conv1d, linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.matching import matches_target

from .bases import block_index_of, category_of, shared_basis, sparse_positions
from .config import FrodConfig
from .defaults import TARGET_MODULES
from .layer import FrodLinear

_STORES = ("frod_V", "frod_s_indices", "frod_s_size")


class FrodModel(BaseTuner):
    prefix = "frod_"
    config_cls = FrodConfig
    default_target_modules = TARGET_MODULES
    uses_shared_state = True  # the tuner owns tensors all layers share (`tuner_tensors`)

    def inject_adapter(self, model: nn.Module, adapter_name: str, **options: Any) -> None:
        for store in _STORES:
            if store not in self._modules:
                setattr(self, store, nn.ModuleDict())
        self._bases_ready = False
        try:
            super().inject_adapter(model, adapter_name, **options)
        except BaseException:
            self._drop_bases(adapter_name)
            raise

    def _target_weights(self, config: FrodConfig) -> dict[int, dict[str, torch.Tensor]]:
        """block index -> role -> `[out, in]` weight, for every module the config targets."""
        weights: dict[int, dict[str, torch.Tensor]] = defaultdict(dict)
        fallback = 0
        for key, module in self.model.named_modules():
            if not key or not matches_target(config, key):
                continue
            base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
            if isinstance(base, nn.Linear):
                weight = base.weight
            elif is_transformers_conv1d(base):
                weight = base.weight.T
            else:
                continue
            weights[block_index_of(key, fallback)][category_of(key)] = weight
            fallback += 1
        return weights

    def _build_bases(self, config: FrodConfig, adapter_name: str) -> None:
        from tqdm.auto import tqdm

        weights = self._target_weights(config)
        generator = torch.Generator(device="cpu").manual_seed(config.projection_prng_key)
        roles = sorted({role for per_block in weights.values() for role in per_block})
        for role in tqdm(roles, disable=not config.progressbar, desc="FRoD shared bases", unit="role"):
            matrices = [per_block[role].detach().to(torch.float32).cpu() for _, per_block in sorted(weights.items()) if role in per_block]
            example = next(per_block[role] for per_block in weights.values() if role in per_block)
            # the base's dtype, as HF, except that half precision keeps fp32: U is solved against V, and a
            # 16-bit V would be amplified by its conditioning
            dtype = torch.float32 if example.dtype in (torch.float16, torch.bfloat16) else example.dtype
            basis = shared_basis(matrices, config.regularization_alpha).to(dtype=dtype, device="cpu")
            in_dim = basis.shape[0]
            for store, value in zip(
                _STORES,
                (basis, sparse_positions(in_dim, config.sparse_rate, generator), torch.tensor([in_dim, in_dim], dtype=torch.long)),
            ):
                stores = getattr(self, store)
                if role not in stores:
                    stores[role] = BufferDict()
                stores[role].set(adapter_name, value, persistent=config.save_projection)

    def _create_and_replace(
        self, config: FrodConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if not self._bases_ready:
            if config.runtime_offload_base_weight:
                warnings.warn(
                    "FrodConfig.runtime_offload_base_weight=True (Hugging Face's CPU offload of base weights) is not "
                    "implemented here: base weights stay where the model puts them (outputs are the same).",
                    UserWarning,
                    stacklevel=4,
                )
            with torch.device("cpu"):  # real tensors even while adapters are created on the meta device
                self._build_bases(config, adapter_name)
            self._bases_ready = True
        role = category_of(current_key)
        if role not in self.frod_V or adapter_name not in self.frod_V[role]:
            raise ConfigError(f"FRoD found no basis for {current_key!r}; it is not a supported target of this adapter.")
        stores = tuple(getattr(self, store)[role] for store in _STORES)
        if isinstance(target, FrodLinear):
            target.update_layer(adapter_name, stores, config)
            return
        base = self.wrapped_base(target, current_key)
        if linear_features(base) is None:
            raise unsupported_target(current_key, base, "FRoD", "torch.nn.Linear and transformers' Conv1D")
        reconcile_fan_in_fan_out(config, base)
        layer = FrodLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(adapter_name, stores, config)
        setattr(parent, target_name, layer)

    # -- saved state, adapters --------------------------------------------------------------------------
    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        if "frod_V" not in self._modules:
            return out
        for store in _STORES:
            for role, entries in getattr(self, store).items():
                if entries.is_persistent(adapter_name):
                    out.append(AdapterTensor(f"{store}.{role}", f"{store}.{role}.{adapter_name}", entries[adapter_name]))
        return out

    def _drop_bases(self, adapter_name: str) -> None:
        for store in _STORES:
            if store not in self._modules:
                continue
            stores = getattr(self, store)
            for role in list(stores.keys()):
                if adapter_name in stores[role]:
                    del stores[role][adapter_name]
                if not len(stores[role]):
                    del stores[role]

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._drop_bases(adapter_name)

    def _unload_tuner_state(self) -> None:
        for store in _STORES:
            if store in self._modules:
                getattr(self, store).clear()
