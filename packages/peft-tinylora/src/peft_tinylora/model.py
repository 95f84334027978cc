"""`TinyLoraModel`: TinyLoRA layers on the targeted modules, and the trained vectors they share.

The targeted layers of an adapter are numbered in module order (HF's `_build_target_key_mapping`:
every matched `nn.Linear`, `Conv1D`, `nn.Embedding` or TinyLoRA layer); with `n` of them,
`groups = max(1, round(n · (1 − weight_tying)))`, layer `i` uses vector `min(i // max(1, n // groups),
groups − 1)`. The vectors live on the tuner (`tinylora_v.<adapter>.<group>`) and are saved as
`base_model.tinylora_v.<group>`. A layer's number also seeds its `P` (fixed by its first adapter).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner, ConfigError
from peft_core.default_targets import QUERY_VALUE_TARGETS
from peft_core.errors import unsupported_target
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.matching import matches_target

from .config import TinyLoraConfig
from .layer import TinyLoraEmbedding, TinyLoraLayer, TinyLoraLinear


class TinyLoraModel(BaseTuner):
    prefix = "tinylora_"
    config_cls = TinyLoraConfig
    default_target_modules = QUERY_VALUE_TARGETS
    uses_shared_state = True  # the tuner owns tensors all layers share (`tuner_tensors`)

    def inject_adapter(self, model: nn.Module, adapter_name: str, **options: Any) -> None:
        if "tinylora_v" not in self._modules:
            self.tinylora_v = nn.ModuleDict()
        self._numbering: dict[str, int] | None = None
        try:
            super().inject_adapter(model, adapter_name, **options)
        except BaseException:
            if adapter_name in self.tinylora_v:
                del self.tinylora_v[adapter_name]
            raise
        if options.get("autocast_adapter_dtype", True) and adapter_name in self.tinylora_v:
            for param in self.tinylora_v[adapter_name].values():
                if param.dtype in (torch.float16, torch.bfloat16):
                    param.data = param.data.float()
        self._refresh_trainable(freeze_base=False)

    def _check_new_adapter_config(self, config: TinyLoraConfig) -> None:
        super()._check_new_adapter_config(config)
        values = {c.save_projection for c in self.peft_config.values()}
        if len(values) > 1:
            raise ConfigError(
                f"TinyLoRA projection tensors must be saved for all adapters or none (save_projection values {sorted(values)}); "
                f"give the new adapter save_projection={not config.save_projection}."
            )

    def _number_targets(self, config: TinyLoraConfig) -> dict[str, int]:
        numbering: dict[str, int] = {}
        for key, module in self.model.named_modules():
            if key and matches_target(config, key) and _is_supported(module):
                numbering[key] = len(numbering)
        return numbering

    def _create_and_replace(
        self, config: TinyLoraConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if self._numbering is None:
            self._numbering = self._number_targets(config)
        index = self._numbering.get(current_key)
        if index is None:
            raise unsupported_target(
                current_key, target, "TinyLoRA", "torch.nn.Linear, torch.nn.Embedding and transformers' Conv1D"
            )
        count = len(self._numbering)
        groups = max(1, round(count * (1.0 - config.weight_tying)))
        v_key = str(min(index // max(1, count // groups), groups - 1))
        self._ensure_vector(config, adapter_name, v_key, target.weight.dtype)
        if isinstance(target, TinyLoraLayer):
            target.update_layer(adapter_name, v_key, config)
            return
        base = self.wrapped_base(target, current_key)
        if isinstance(base, nn.Embedding):
            layer: TinyLoraLayer = TinyLoraEmbedding(target, self.tinylora_v, index)
        else:
            reconcile_fan_in_fan_out(config, base)
            layer = TinyLoraLinear(target, self.tinylora_v, index, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(adapter_name, v_key, config)
        setattr(parent, target_name, layer)

    def _ensure_vector(self, config: TinyLoraConfig, adapter_name: str, v_key: str, dtype: torch.dtype) -> None:
        if adapter_name not in self.tinylora_v:
            self.tinylora_v[adapter_name] = nn.ParameterDict()
        vectors = self.tinylora_v[adapter_name]
        if v_key in vectors:
            return
        v = torch.empty(config.u, dtype=dtype if dtype.is_floating_point else None)
        if not v.is_meta:
            with torch.no_grad():
                if config.init_weights is True:
                    v.zero_()
                else:  # "uniform"; HF leaves False uninitialised memory, here it is uniform too
                    v.uniform_(-config.init_v_bound, config.init_v_bound)
        vectors[v_key] = nn.Parameter(v)

    # -- trainable vectors, saved state -------------------------------------------------------------
    def _refresh_trainable(self, freeze_base: bool = True, adapter_modules: Sequence | None = None) -> None:
        super()._refresh_trainable(freeze_base=freeze_base, adapter_modules=adapter_modules)
        if "tinylora_v" not in self._modules:
            return
        for name, vectors in self.tinylora_v.items():
            config = self.peft_config.get(name)
            trainable = name in self.active_adapters and config is not None and not config.inference_mode
            for param in vectors.values():
                param.requires_grad_(trainable)

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        if "tinylora_v" in self._modules and adapter_name in self.tinylora_v:
            for key, param in self.tinylora_v[adapter_name].items():
                out.append(AdapterTensor(f"tinylora_v.{key}", f"tinylora_v.{adapter_name}.{key}", param))
        return out

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        if adapter_name in self.tinylora_v:
            del self.tinylora_v[adapter_name]

    def _unload_tuner_state(self) -> None:
        if "tinylora_v" in self._modules:
            self.tinylora_v.clear()


def _is_supported(module: nn.Module) -> bool:
    return isinstance(module, (TinyLoraLayer, nn.Embedding)) or linear_features(module) is not None
