"""`FourierFTModel`: puts FourierFT layers on the targeted modules of a model."""

from __future__ import annotations

import re
import warnings
from typing import Mapping

import torch
from torch import nn

from peft_core import AdapterTensor, BaseTuner

from . import bias as bias_modes
from .config import FourierFTConfig
from .defaults import REGEX_TARGET_MODULES
from .layer import FourierFTLinear, is_conv1d


def n_frequency_for(config: FourierFTConfig, key: str) -> int:
    """HF's older pattern rule: the first pattern `p` (in order) with `re.match(".*\\.p$", key)`, else the
    exact full name, else `n_frequency`."""
    patterns = config.n_frequency_pattern or {}
    hit = next((p for p in patterns if re.match(rf".*\.{p}$", key)), key)
    return patterns.get(hit, config.n_frequency)


def _model_type(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    if isinstance(config, Mapping):
        return config.get("model_type")
    return getattr(config, "model_type", None)


class FourierFTModel(BaseTuner):
    """FourierFT tuner; see `FourierFTConfig` for the options."""

    prefix = "fourierft_"

    def _prepare_adapter_config(self, config: FourierFTConfig, model: nn.Module) -> FourierFTConfig:  # type: ignore[override]
        if config.target_modules is None:
            regex = REGEX_TARGET_MODULES.get(_model_type(model) or "")
            if regex is not None:
                config.target_modules = regex
                return config
        return super()._prepare_adapter_config(config, model)

    def _check_new_adapter_config(self, config: FourierFTConfig) -> None:  # type: ignore[override]
        bias_modes.check_single_bias_adapter(self.peft_config, type(self).__name__)

    def inject_adapter(
        self,
        model: nn.Module,
        adapter_name: str,
        low_cpu_mem_usage: bool = False,
        autocast_adapter_dtype: bool = True,
    ) -> None:
        self._pattern_hits: set[str] = set()
        super().inject_adapter(
            model, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
        )
        config = self.peft_config[adapter_name]
        unused = sorted(set(config.n_frequency_pattern or {}) - self._pattern_hits)
        if unused:
            warnings.warn(
                f"n_frequency_pattern entries {unused} of adapter {adapter_name!r} matched no targeted module "
                f"(a pattern p matches names ending in '.p', or the exact full name).",
                RuntimeWarning,
                stacklevel=3,
            )

    def _create_and_replace(
        self,
        config: FourierFTConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        patterns = config.n_frequency_pattern or {}
        hit = next((p for p in patterns if re.match(rf".*\.{p}$", current_key)), current_key)
        if hit in patterns:
            self._pattern_hits.add(hit)
        args = (adapter_name, n_frequency_for(config, current_key), config.scaling, config.random_loc_seed,
                config.init_weights)
        if isinstance(target, FourierFTLinear):
            target.update_layer(*args)
            return
        if isinstance(target, nn.Linear):
            if config.fan_in_fan_out:
                warnings.warn(
                    "fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                    "Setting fan_in_fan_out to False."
                )
                config.fan_in_fan_out = False
        elif is_conv1d(target):
            if not config.fan_in_fan_out:
                warnings.warn(
                    "fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True."
                )
                config.fan_in_fan_out = True
        else:
            raise TypeError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by FourierFT; supported "
                f"are torch.nn.Linear and transformers' Conv1D."
            )
        layer = FourierFTLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)

    # -- bias modes -------------------------------------------------------------------------------
    def _bias_entries(self, adapter_name: str) -> dict[str, str]:
        mode = getattr(self.peft_config.get(adapter_name), "bias", "none")
        return bias_modes.bias_entries(self.model, mode, FourierFTLinear, adapter_name)

    def _mark_extra_trainable(self, adapter_name: str) -> None:
        bias_modes.mark_biases_trainable(self.model, self._bias_entries(adapter_name))

    def extra_tensors_to_save(self, adapter_name: str) -> dict[str, torch.Tensor]:
        return bias_modes.base_bias_tensors(self.model, self._bias_entries(adapter_name))

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        return bias_modes.renamed_bias_tensors(self.model, self._bias_entries(adapter_name))

    def disable_adapter_layers(self) -> None:
        for name in self.active_adapters:
            mode = getattr(self.peft_config.get(name), "bias", "none")
            if mode != "none":
                warnings.warn(
                    f"Careful, disabling adapter layers with bias configured to be '{mode}' does not produce the "
                    f"same output as the base model would without adaption."
                )
        super().disable_adapter_layers()
