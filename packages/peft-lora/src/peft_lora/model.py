"""`LoraModel`: puts LoRA layers into a model (peft-core's `BaseTuner` does matching and bookkeeping).

What LoRA adds to the shared tuner:
- the layer for each targeted module (Linear / Conv1D / Embedding / Conv1d-3d), with the per-module
  rank and alpha from `rank_pattern` / `alpha_pattern`;
- `fan_in_fan_out` flipped to match the target (True for GPT-2's `Conv1D`, False for `nn.Linear`),
  with Hugging Face PEFT's warning; the flipped value is what gets saved;
- (the `bias` modes "all" / "lora_only" and the one-adapter-with-bias rule are core's generic ones);
- `add_weighted_adapter` (see `weighted.py`).
"""

from __future__ import annotations

import warnings
from typing import Sequence

from peft_core import BaseTuner, pattern_value
from peft_core.tuners.construction import register_module
from torch import nn

from .config import LoraConfig
from .hotswap import LoraHotswap
from .layers import (
    SUPPORTED_LAYERS,
    Linear,
    LoraLayer,
    is_transformers_conv1d,
    layer_class_for,
)
from .weighted import CombinationType, add_weighted_adapter


class LoraModel(BaseTuner):
    """Creates LoRA adapters in a model; see `LoraConfig` for the options."""

    prefix = "lora_"
    hotswap_support = LoraHotswap()  # peft_core.hotswap: swap adapters in place, also under torch.compile

    # -- injection --------------------------------------------------------------------------
    def inject_adapter(
        self, model: nn.Module, adapter_name: str, low_cpu_mem_usage: bool = False, autocast_adapter_dtype: bool = True
    ) -> None:
        if hasattr(nn.ParameterDict(), adapter_name):
            # core's validate_adapter_name checks ModuleDict attributes only; ParameterDict (embedding
            # factors) also has copy/get/fromkeys/setdefault/popitem
            raise ValueError(
                f"Invalid adapter name {adapter_name!r}: it collides with a torch ParameterDict attribute (used for "
                f"LoRA embedding factors); choose another name."
            )
        self._pattern_hits: set[str] = set()
        super().inject_adapter(
            model, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
        )
        config = self.peft_config[adapter_name]
        unused = [p for p in (*config.rank_pattern, *config.alpha_pattern) if p not in self._pattern_hits]
        if unused:
            warnings.warn(
                f"rank_pattern/alpha_pattern entries {sorted(set(unused))} of adapter {adapter_name!r} matched no "
                f"targeted module; check the patterns (regexes matched at the end of module names).",
                UserWarning,
                stacklevel=3,
            )

    def _create_and_replace(
        self,
        config: LoraConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        r = pattern_value(config.rank_pattern, current_key, config.r)
        alpha = pattern_value(config.alpha_pattern, current_key, config.lora_alpha)
        for pattern in (*config.rank_pattern, *config.alpha_pattern):
            if pattern_value({pattern: True}, current_key, False):
                self._pattern_hits.add(pattern)
        if isinstance(target, LoraLayer) and target.owner_method == "lora":
            self._sync_fan_in_fan_out(config, target.get_base_layer())
            target.update_layer(adapter_name, r, alpha, config)
            return
        base = self.wrapped_base(target, current_key)  # another method's layer: wrap it (mixed models only)
        layer_cls = layer_class_for(base, key=current_key, config=config, model=self.model)
        if layer_cls is None:
            raise ValueError(
                f"Target module {current_key!r} ({type(base).__name__}) is not supported by LoRA. Supported layer "
                f"types: {SUPPORTED_LAYERS}. Change target_modules (or exclude_modules) to skip it."
            )
        if base is not target and config.use_dora:
            raise ValueError(
                f"Target module {current_key!r} already holds a {type(target).__name__}; DoRA normalises the base "
                f"weight alone, so it can't wrap another method's layer. Use plain LoRA here or add the DoRA adapter first."
            )
        if layer_cls is Linear:
            self._sync_fan_in_fan_out(config, base)
        layer = layer_cls(target)
        layer.update_layer(adapter_name, r, alpha, config)
        if target_name in parent._modules:
            register_module(parent, target_name, layer)  # replaces the child, as setattr would (faster)
        else:
            setattr(parent, target_name, layer)

    @staticmethod
    def _sync_fan_in_fan_out(config: LoraConfig, base: nn.Module) -> None:
        if is_transformers_conv1d(base) and not config.fan_in_fan_out:
            warnings.warn(
                "fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True.",
                UserWarning,
                stacklevel=4,
            )
            config.fan_in_fan_out = True
        elif isinstance(base, nn.Linear) and config.fan_in_fan_out:
            warnings.warn(
                "fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out "
                "to False.",
                UserWarning,
                stacklevel=4,
            )
            config.fan_in_fan_out = False

    # -- several adapters -------------------------------------------------------------------
    def add_weighted_adapter(
        self,
        adapters: Sequence[str],
        weights: Sequence[float],
        adapter_name: str,
        combination_type: CombinationType = "svd",
        svd_rank: int | None = None,
        svd_clamp: float | None = None,
        svd_full_matrices: bool = True,
        svd_driver: str | None = None,
        density: float | None = None,
        majority_sign_method: str = "total",
    ) -> None:
        """Add `adapter_name` = the weighted combination of `adapters` (see `peft_lora.weighted`).

        `combination_type`: "svd" (default), "linear", "cat", "ties", "ties_svd", "dare_linear", "dare_ties",
        "dare_linear_svd", "dare_ties_svd", "magnitude_prune", "magnitude_prune_svd". `density` is needed by
        the pruning types. The new adapter is inactive: call `set_adapter(adapter_name)`.
        """
        add_weighted_adapter(
            self,
            adapters,
            weights,
            adapter_name,
            combination_type=combination_type,
            svd_rank=svd_rank,
            svd_clamp=svd_clamp,
            svd_full_matrices=svd_full_matrices,
            svd_driver=svd_driver,
            density=density,
            majority_sign_method=majority_sign_method,  # type: ignore[arg-type]
        )

    def set_scale(self, adapter: str, scale: float) -> None:
        """Scale adapter `adapter`'s contribution by `scale` relative to its configured alpha/r."""
        for layer in self.tuner_layers():
            if isinstance(layer, LoraLayer):
                layer.set_scale(adapter, scale)
