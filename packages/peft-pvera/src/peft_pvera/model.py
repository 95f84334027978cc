"""`PveraModel`: puts PVeRA layers on the targeted modules and owns each adapter's projections.

Each adapter gets its own frozen `pvera_A [2r, max_in]` / `pvera_B [max_out, r]` (maxima over the
layers it adapts), drawn from its `projection_prng_key` once its layers exist. They live in the
tuner's buffer dicts (model keys `base_model.pvera_A.<adapter>`) and are saved as
`base_model.pvera_A` / `base_model.pvera_B` when `save_projection` is true.
"""

from __future__ import annotations

from torch import nn

from peft_core.errors import unsupported_target
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.shared_tensors import SharedTensorsTuner, largest_features, on_base_weight

from .config import PveraConfig
from .defaults import TARGET_MODULES
from .layer import PveraLinear
from .projections import draw_projections

class PveraModel(SharedTensorsTuner):
    prefix = "pvera_lambda_"
    config_cls = PveraConfig
    default_target_modules = TARGET_MODULES
    shared_stores = ("pvera_A", "pvera_B")

    def init_shared_tensors(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        config: PveraConfig = self.peft_config[adapter_name]
        layers = [m for m in self.tuner_layers() if isinstance(m, PveraLinear) and m.has_adapter(adapter_name)]
        max_in, max_out = largest_features(layers)
        # the projections take the adapted weights' device and float dtype
        pvera_a, pvera_b = on_base_weight(layers[0], *draw_projections(config.r, max_in, max_out, config.projection_prng_key))
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
