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
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out
from peft_core.tuners.shared_tensors import SharedTensorsTuner, largest_features, on_base_weight

from .config import VeraConfig
from .defaults import TARGET_MODULES
from .layer import VeraLinear, is_conv1d
from .projections import make_projections


class VeraModel(SharedTensorsTuner):
    """VeRA tuner; see `VeraConfig` for the options. The `bias` modes are peft-core's generic ones."""

    prefix = "vera_lambda_"
    config_cls = VeraConfig
    default_target_modules = TARGET_MODULES
    shared_stores = ("vera_A", "vera_B")

    # -- injection --------------------------------------------------------------------------------
    def init_shared_tensors(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        layers = [m for m in self.tuner_layers() if m.has_adapter(adapter_name)]
        # the shared projections are sized by the config too: same checks as the layers' own tensors
        with guard_adapter_creation(self.peft_config[adapter_name], adapter_name, layers, on_meta=False) as site:
            site.key = "vera_A/vera_B (shared projections)"
            self._init_projections(adapter_name)

    def _init_projections(self, adapter_name: str) -> None:
        config = self.peft_config[adapter_name]
        layers = [m for m in self.tuner_layers() if isinstance(m, VeraLinear) and m.has_adapter(adapter_name)]
        max_in, max_out = largest_features(layers)
        vera_a, vera_b = on_base_weight(layers[0], *make_projections(config.r, max_in, max_out, config.projection_prng_key))
        self.vera_A.set(adapter_name, vera_a, persistent=config.save_projection)
        self.vera_B.set(adapter_name, vera_b, persistent=config.save_projection)

    def _create_and_replace(
        self,
        config: VeraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        args = (adapter_name, config.r, config.vera_dropout, config.d_initial, config.init_weights)
        if isinstance(target, VeraLinear):
            target.update_layer(*args)
            return
        if not isinstance(target, nn.Linear) and not is_conv1d(target):
            raise TypeError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by VeRA; supported are "
                f"torch.nn.Linear and transformers' Conv1D."
            )
        reconcile_fan_in_fan_out(config, target)
        layer = VeraLinear(target, self.vera_A, self.vera_B, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
