"""`PveraModel`: puts PVeRA layers on the targeted modules and owns each adapter's projections.

Each adapter gets its own frozen `pvera_A [2r, max_in]` / `pvera_B [max_out, r]` (maxima over the
layers it adapts), drawn from its `projection_prng_key` once its layers exist. They live in the
tuner's buffer dicts (model keys `base_model.pvera_A.<adapter>`) and are saved as
`base_model.pvera_A` / `base_model.pvera_B` when `save_projection` is true.
"""

from __future__ import annotations

from torch import nn

from peft_core.tuners.shared_tensors import SharedTensorsTuner
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner

from .config import PveraConfig
from .defaults import TARGET_MODULES
from .layer import PveraLinear
from .projections import draw_projections

# PveraLinear.update_layer's arguments after the adapter name, in order
LAYER_FIELDS = ("r", "pvera_dropout", "d_initial", "init_weights", "sample_at_inference", "generator_seed")


class PveraModel(SharedTensorsTuner, TargetLayerTuner):
    prefix = "pvera_lambda_"
    config_cls = PveraConfig
    default_target_modules = TARGET_MODULES
    shared_stores = ("pvera_A", "pvera_B")
    target_layer = TargetLayer(PveraLinear, "PVeRA", LINEAR_OR_CONV1D, args=LAYER_FIELDS)

    def init_shared_tensors(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        config: PveraConfig = self.peft_config[adapter_name]
        draw = lambda max_in, max_out: draw_projections(config.r, max_in, max_out, config.projection_prng_key)  # noqa: E731
        self.draw_for_largest_layer(adapter_name, draw, config.save_projection)

    def new_layer(self, target: nn.Module, config: PveraConfig, current_key: str) -> PveraLinear:  # type: ignore[override]
        return PveraLinear(target, self.pvera_A, self.pvera_B, fan_in_fan_out=config.fan_in_fan_out)
