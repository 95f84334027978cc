"""`VeraModel`: puts VeRA layers on the targeted modules and owns each adapter's shared projections.

Each adapter gets its own frozen `vera_A [r, max_in]` / `vera_B [max_out, r]` (maxima over the
layers *it* targets), drawn from its own `projection_prng_key` once its layers exist. They live on
the tuner in `vera_A` / `vera_B` buffer dicts (model keys `base_model.vera_A.<adapter>`) and are
saved as `base_model.vera_A` / `base_model.vera_B` when `save_projection` is true (the layers'
`adapter_tensors` don't cover them: VeRA's prefix is `vera_lambda_`).
"""

from __future__ import annotations

from torch import nn

from peft_core.tuners.creation_guard import guard_adapter_creation
from peft_core.tuners.shared_tensors import SharedTensorsTuner
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner

from .config import VeraConfig
from .defaults import TARGET_MODULES
from .layer import VeraLinear
from .projections import make_projections


class VeraModel(SharedTensorsTuner, TargetLayerTuner):
    """VeRA tuner; see `VeraConfig` for the options. The `bias` modes are peft-core's generic ones."""

    prefix = "vera_lambda_"
    config_cls = VeraConfig
    default_target_modules = TARGET_MODULES
    shared_stores = ("vera_A", "vera_B")
    target_layer = TargetLayer(
        VeraLinear, "VeRA", LINEAR_OR_CONV1D, args=("r", "vera_dropout", "d_initial", "init_weights"), nests=False, error=TypeError
    )

    # -- injection --------------------------------------------------------------------------------
    def init_shared_tensors(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        layers = [m for m in self.tuner_layers() if m.has_adapter(adapter_name)]
        # the shared projections are sized by the config too: same checks as the layers' own tensors
        with guard_adapter_creation(self.peft_config[adapter_name], adapter_name, layers, on_meta=False) as site:
            site.key = "vera_A/vera_B (shared projections)"
            self._init_projections(adapter_name)

    def _init_projections(self, adapter_name: str) -> None:
        config = self.peft_config[adapter_name]
        draw = lambda max_in, max_out: make_projections(config.r, max_in, max_out, config.projection_prng_key)  # noqa: E731
        self.draw_for_largest_layer(adapter_name, draw, config.save_projection)

    def new_layer(self, target: nn.Module, config: VeraConfig, current_key: str) -> VeraLinear:  # type: ignore[override]
        return VeraLinear(target, self.vera_A, self.vera_B, fan_in_fan_out=config.fan_in_fan_out)
