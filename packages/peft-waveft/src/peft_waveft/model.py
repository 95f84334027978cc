"""`WaveFTModel`: puts a `WaveFTLinear` around every targeted `nn.Linear` or GPT-2 `Conv1D`."""

from __future__ import annotations

from torch import nn

from peft_core import ConfigError, pattern_value
from peft_core.tuners.layer import BaseTunerLayer
from peft_core.tuners.linear_targets import linear_features
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner
from peft_core.tuners.walk import named_modules

from .config import WaveFTConfig
from .defaults import TARGET_MODULES
from .layer import WaveFTLinear


class WaveFTModel(TargetLayerTuner):
    prefix = "waveft_"
    config_cls = WaveFTConfig
    default_target_modules = TARGET_MODULES
    target_layer = TargetLayer(WaveFTLinear, "WaveFT", LINEAR_OR_CONV1D, nests=False)

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

    def layer_args(self, config: WaveFTConfig, adapter_name: str, current_key: str) -> tuple:  # type: ignore[override]
        n_frequency = self._n_frequency(config, adapter_name, current_key)
        return (n_frequency, config.scaling, config.wavelet_family, config.use_idwt, config.random_loc_seed,
                config.init_weights)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._proportional.pop(adapter_name, None)
