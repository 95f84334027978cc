"""`PveraModel`: puts PVeRA layers on the targeted modules and owns each adapter's projections.

Each adapter gets its own frozen `pvera_A [2r, max_in]` / `pvera_B [max_out, r]` (maxima over the
layers it adapts), drawn from its `projection_prng_key` once its layers exist. They live in the
tuner's buffer dicts (model keys `base_model.pvera_A.<adapter>`) and are saved as
`base_model.pvera_A` / `base_model.pvera_B` when `save_projection` is true.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from peft_core import AdapterTensor, BaseTuner
from peft_core.errors import unsupported_target
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out

from .config import PveraConfig
from .layer import PveraLinear
from .projections import draw_projections

_STORES = ("pvera_A", "pvera_B")


class PveraModel(BaseTuner):
    prefix = "pvera_lambda_"

    def inject_adapter(self, model: nn.Module, adapter_name: str, **options: Any) -> None:
        for store in _STORES:
            if store not in self._modules:
                setattr(self, store, BufferDict())
        super().inject_adapter(model, adapter_name, **options)
        self._draw(adapter_name)

    def _draw(self, adapter_name: str) -> None:
        config: PveraConfig = self.peft_config[adapter_name]
        layers = [m for m in self.tuner_layers() if isinstance(m, PveraLinear) and m.has_adapter(adapter_name)]
        max_in = max(layer.in_features for layer in layers)
        max_out = max(layer.out_features for layer in layers)
        pvera_a, pvera_b = draw_projections(config.r, max_in, max_out, config.projection_prng_key)
        ref = layers[0].get_base_layer().weight  # the projections take the adapted weights' device and float dtype
        if ref.device.type != "meta":
            dtype = ref.dtype if ref.is_floating_point() else None
            pvera_a, pvera_b = pvera_a.to(ref.device, dtype), pvera_b.to(ref.device, dtype)
        self.pvera_A.set(adapter_name, pvera_a, persistent=config.save_projection)
        self.pvera_B.set(adapter_name, pvera_b, persistent=config.save_projection)

    def _create_and_replace(
        self, config: PveraConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        args = dict(
            r=config.r,
            dropout=config.pvera_dropout,
            d_initial=config.d_initial,
            init_weights=config.init_weights,
            sample_at_inference=config.sample_at_inference,
            generator_seed=config.generator_seed,
        )
        if isinstance(target, PveraLinear):
            target.update_layer(adapter_name, **args)
            return
        base = self.wrapped_base(target, current_key)
        if linear_features(base) is None:
            raise unsupported_target(current_key, base, "PVeRA", "torch.nn.Linear and transformers' Conv1D")
        reconcile_fan_in_fan_out(config, base)
        layer = PveraLinear(target, self.pvera_A, self.pvera_B, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(adapter_name, **args)
        setattr(parent, target_name, layer)

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        out = super().tuner_tensors(adapter_name)
        if "pvera_A" in self._modules and self.pvera_A.is_persistent(adapter_name):
            for store in _STORES:
                out.append(AdapterTensor(store, f"{store}.{adapter_name}", getattr(self, store)[adapter_name]))
        return out

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        for store in _STORES:
            if adapter_name in getattr(self, store):
                del getattr(self, store)[adapter_name]

    def _unload_tuner_state(self) -> None:
        for store in _STORES:
            if store in self._modules:
                getattr(self, store).clear()
