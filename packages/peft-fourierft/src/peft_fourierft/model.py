"""`FourierFTModel`: puts FourierFT layers on the targeted modules of a model."""

from __future__ import annotations

import warnings

from peft_core import patterns
from peft_core.tuners.target_layer import LINEAR_OR_CONV1D, TargetLayer, TargetLayerTuner

from .config import FourierFTConfig
from .defaults import TARGET_MODULES
from .layer import FourierFTLinear

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


class FourierFTModel(TargetLayerTuner):
    """FourierFT tuner; see `FourierFTConfig` for the options. The `bias` modes are peft-core's generic ones."""

    prefix = "fourierft_"
    config_cls = FourierFTConfig
    default_target_modules = TARGET_MODULES
    target_layer = TargetLayer(FourierFTLinear, "FourierFT", LINEAR_OR_CONV1D, nests=False, error=TypeError)

    def layer_args(self, config: FourierFTConfig, adapter_name: str, current_key: str) -> tuple:  # type: ignore[override]
        key_patterns = config.n_frequency_pattern or {}
        hit = next((p for p in key_patterns if _pattern_hit(config, p, current_key)), current_key)
        if hit in key_patterns:  # remembered to warn about the patterns that matched nothing
            self.__dict__.setdefault("_pattern_hits", {}).setdefault(adapter_name, set()).add(hit)
        return (n_frequency_for(config, current_key), config.scaling, config.random_loc_seed, config.init_weights)

    def _add_auxiliary_layers(self, config: FourierFTConfig, adapter_name: str, low_cpu_mem_usage: bool) -> None:  # type: ignore[override]
        """Runs once the adapter's targets have their layers: warn about `n_frequency_pattern` entries that
        matched none of them."""
        hits = self.__dict__.get("_pattern_hits", {}).pop(adapter_name, set())
        unused = sorted(set(config.n_frequency_pattern or {}) - hits)
        if unused:
            warnings.warn(
                f"n_frequency_pattern entries {unused} of adapter {adapter_name!r} matched no targeted module "
                f"(a pattern p matches names ending in '.p', or the exact full name).",
                RuntimeWarning,
                stacklevel=4,
            )
