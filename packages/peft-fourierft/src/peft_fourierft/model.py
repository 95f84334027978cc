"""`FourierFTModel`: puts FourierFT layers on the targeted modules of a model."""

from __future__ import annotations

import warnings

from torch import nn

from peft_core import BaseTuner, patterns
from peft_core.tuners.linear_targets import reconcile_fan_in_fan_out

from .config import FourierFTConfig
from .defaults import TARGET_MODULES
from .layer import FourierFTLinear, is_conv1d

FREQUENCY_PATTERN_TEMPLATE = r".*\.{}$"


def n_frequency_for(config: FourierFTConfig, key: str) -> int:
    """HF's older pattern rule: the first pattern `p` (in order) with `re.match(".*\\.p$", key)`, else the
    exact full name, else `n_frequency`."""
    key_patterns = config.n_frequency_pattern or {}
    hit = next((p for p in key_patterns if _pattern_hit(config, p, key)), key)
    return key_patterns.get(hit, config.n_frequency)


def _pattern_hit(config: FourierFTConfig, pattern: str, key: str) -> bool:
    field = patterns.field_label(config, "n_frequency_pattern")
    return patterns.match(pattern, key, field, FREQUENCY_PATTERN_TEMPLATE) is not None


class FourierFTModel(BaseTuner):
    """FourierFT tuner; see `FourierFTConfig` for the options. The `bias` modes are peft-core's generic ones."""

    prefix = "fourierft_"
    config_cls = FourierFTConfig
    default_target_modules = TARGET_MODULES

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
        key_patterns = config.n_frequency_pattern or {}
        hit = next((p for p in key_patterns if _pattern_hit(config, p, current_key)), current_key)
        if hit in key_patterns:
            self._pattern_hits.add(hit)
        args = (adapter_name, n_frequency_for(config, current_key), config.scaling, config.random_loc_seed,
                config.init_weights)
        if isinstance(target, FourierFTLinear):
            target.update_layer(*args)
            return
        if not isinstance(target, nn.Linear) and not is_conv1d(target):
            raise TypeError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by FourierFT; supported "
                f"are torch.nn.Linear and transformers' Conv1D."
            )
        reconcile_fan_in_fan_out(config, target)
        layer = FourierFTLinear(target, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(*args)
        setattr(parent, target_name, layer)
