"""`WaveFTModel`: puts a `WaveFTLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from torch import nn

from peft_core import BaseTuner, ConfigError, pattern_value
from peft_core.tuners.layer import BaseTunerLayer
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.walk import named_modules

from .config import WaveFTConfig
from .defaults import TARGET_MODULES
from .layer import WaveFTLinear


class WaveFTModel(BaseTuner):
    prefix = "waveft_"
    config_cls = WaveFTConfig
    default_target_modules = TARGET_MODULES

    def __init__(self, *args, **kwargs) -> None:
        self._proportional: dict[str, dict[str, int]] = {}
        super().__init__(*args, **kwargs)

    def _n_frequency(self, config: WaveFTConfig, adapter_name: str, key: str) -> int:
        if config.proportional_parameters:
            shares = self._proportional.get(adapter_name)
            if shares is None:
                shares = self._proportional[adapter_name] = self._proportional_shares(config)
            if key in shares:
                return shares[key]
        return pattern_value(config.n_frequency_pattern, key, config.n_frequency)

    def _proportional_shares(self, config: WaveFTConfig) -> dict[str, int]:
        """HF's allocation: `n_frequency × layers` shared in proportion to `in·out` (at least 1 each)."""
        sizes: dict[str, int] = {}
        for key in self._match(config, named_modules(self.model))[0]:
            module = self.model.get_submodule(key)
            base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
            features = linear_features(base)
            if features is not None:
                sizes[key] = features[0] * features[1]
        if not sizes:
            raise ConfigError("WaveFT proportional_parameters: no Linear/Conv1D target modules found.")
        total, budget = sum(sizes.values()), config.n_frequency * len(sizes)
        return {key: max(1, round(size / total * budget)) for key, size in sizes.items()}

    def _create_and_replace(
        self,
        config: WaveFTConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        n_frequency = self._n_frequency(config, adapter_name, current_key)
        args = (
            adapter_name,
            n_frequency,
            config.scaling,
            config.wavelet_family,
            config.use_idwt,
            config.random_loc_seed,
            config.init_weights,
        )
        if isinstance(target, WaveFTLinear):
            target.update_layer(*args)
            return
        if linear_features(target) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by WaveFT; supported are "
                f"torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        reconcile_fan_in_fan_out(config, target)
        layer = WaveFTLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        try:
            layer.update_layer(*args)
        except ConfigError as exc:
            raise ConfigError(f"{current_key!r}: {exc}") from None
        setattr(parent, target_name, layer)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._proportional.pop(adapter_name, None)
