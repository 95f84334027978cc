"""`IA3Model`: puts (IA)³ layers on the targeted modules of a model."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, patterns
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out
from peft_core.tuners.tuner import model_type_of

from .config import IA3Config
from .defaults import FEEDFORWARD_MODULES, TARGET_MODULES
from .layer import IA3Conv, IA3Layer, IA3Linear, is_conv1d


def is_feedforward(config: IA3Config, key: str) -> bool:
    """HF's rule: a string is a regex full match; list entries match any name that *ends with* them (no dot)."""
    ff = config.feedforward_modules
    if isinstance(ff, str):
        return patterns.fullmatch(ff, key, patterns.field_label(config, "feedforward_modules"))
    return any(key.endswith(entry) for entry in ff or ())


class IA3Model(BaseTuner):
    """(IA)³ tuner. Target lists are never compacted (feed-forward entries must stay a subset), as in HF."""

    prefix = "ia3_"
    config_cls = IA3Config
    default_target_modules = TARGET_MODULES
    compact_large_target_lists = False

    def _prepare_adapter_config(self, config: IA3Config, model: nn.Module) -> IA3Config:  # type: ignore[override]
        config = super()._prepare_adapter_config(config, model)
        if config.feedforward_modules is None:
            model_type = model_type_of(model)
            defaults = FEEDFORWARD_MODULES.get(model_type) if model_type else None
            if defaults is None:
                raise ValueError(
                    f"IA3Config.feedforward_modules is not set and there is no default for model_type {model_type!r}. "
                    f"Set feedforward_modules to the targets whose inputs should be scaled (a subset of "
                    f"target_modules), or to [] for none."
                )
            config.feedforward_modules = set(defaults)
        return config

    def _create_and_replace(
        self,
        config: IA3Config,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        ff = is_feedforward(config, current_key)
        if isinstance(target, IA3Layer):
            target.update_layer(adapter_name, ff, config.init_ia3_weights)
            return
        layer = self._new_layer(config, target, current_key)
        layer.update_layer(adapter_name, ff, config.init_ia3_weights)
        setattr(parent, target_name, layer)

    @staticmethod
    def _new_layer(config: IA3Config, target: nn.Module, key: str) -> IA3Layer:
        if isinstance(target, (nn.Conv2d, nn.Conv3d)):
            return IA3Conv(target)
        if isinstance(target, nn.Linear) or is_conv1d(target):
            reconcile_fan_in_fan_out(config, target, stacklevel=4)
            return IA3Linear(target, fan_in_fan_out=config.fan_in_fan_out)
        raise ValueError(
            f"Target module {key!r} ({type(target).__name__}) is not supported by (IA)³; supported are "
            f"torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d and transformers' Conv1D."
        )
