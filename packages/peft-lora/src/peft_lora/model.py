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
from typing import Any, Mapping, Sequence

import torch
from peft_core import BaseTuner, current_batch_plan, pattern_value
from peft_core.errors import ConfigError
from peft_core.tuners.construction import register_module
from peft_core.tuners.matching import ALL_LINEAR
from peft_core.tuners.walk import named_modules as walk_named_modules
from torch import nn

from . import moe_conversion, token_indices

from .config import LoraConfig
from .hotswap import LoraHotswap
from .weight_conversion import convert_to_plain_lora
from .layers import (
    SUPPORTED_LAYERS,
    Linear,
    LoraLayer,
    is_transformers_conv1d,
    layer_class_for,
)
from .layer_replication import MERGE_REFUSAL, check_replication, replicate_layers
from .layers.param import ParamWrapper
from .param_targets import check_same_parameter_targets, create_param_layer, warn_uncovered_experts
from .targets import DEFAULT_TARGET_MODULES
from .variants.alora import activation_offsets
from .variants.kasa import check_kasa_mix, kasa_loss, truncate_pending
from .variants.monteclora import monteclora_loss
from .weighted import CombinationType, add_weighted_adapter


class LoraModel(BaseTuner):
    """Creates LoRA adapters in a model; see `LoraConfig` for the options."""

    prefix = "lora_"
    config_cls = LoraConfig
    default_target_modules = DEFAULT_TARGET_MODULES
    is_mixed_compatible = True
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
        config = self.peft_config[adapter_name]
        moe_conversion.convert_config(config, model, lambda: self._all_linear_names(model, walk_named_modules(model), config))
        check_same_parameter_targets(self.peft_config, config)
        check_kasa_mix(self.peft_config, adapter_name)
        token_indices.check_token_config(model, config)
        all_linear = isinstance(config.target_modules, str) and config.target_modules.lower() == ALL_LINEAR
        undo_replication = None
        if check_replication(self.__dict__.get("_replicated_layers"), config):
            undo_replication = replicate_layers(model, config.layer_replication)
        try:
            super().inject_adapter(
                model, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
            )
        except BaseException:
            if undo_replication is not None:
                undo_replication()
            raise
        truncate_pending(model.modules())
        if undo_replication is not None:
            self.__dict__["_replicated_layers"] = [list(map(int, pair)) for pair in config.layer_replication]
        config = self.peft_config[adapter_name]
        if all_linear:
            warn_uncovered_experts(model, adapter_name)
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
        r, alpha = self._rank_and_alpha(config, current_key)
        if isinstance(target, LoraLayer) and target.owner_method == "lora":
            target.__dict__["target_key"] = current_key  # read by variants that depend on the name (BD-LoRA)
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
        layer.__dict__["target_key"] = current_key
        layer.update_layer(adapter_name, r, alpha, config)
        if target_name in parent._modules:
            register_module(parent, target_name, layer)  # replaces the child, as setattr would (faster)
        else:
            setattr(parent, target_name, layer)

    def _create_and_replace_parameter(
        self,
        config: LoraConfig,
        adapter_name: str,
        holder_key: str,
        parameter_name: str,
        current_key: str,
    ) -> None:
        r, alpha = self._rank_and_alpha(config, current_key)
        create_param_layer(self.model, config, adapter_name, holder_key, parameter_name, current_key, r, alpha)

    def _rank_and_alpha(self, config: LoraConfig, key: str) -> tuple[int, float]:
        for pattern in (*config.rank_pattern, *config.alpha_pattern):
            if pattern_value({pattern: True}, key, False):
                self._pattern_hits.add(pattern)
        return pattern_value(config.rank_pattern, key, config.r), pattern_value(config.alpha_pattern, key, config.lora_alpha)

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

    def _add_auxiliary_layers(self, config: LoraConfig, adapter_name: str, low_cpu_mem_usage: bool) -> None:
        """`trainable_token_indices`: the embedding rows trained next to LoRA (see `token_indices`)."""
        token_indices.add_token_layers(self.model, config, adapter_name)

    def saves_targeted_embedding_weights(self, adapter_name: str) -> bool:
        # Hugging Face PEFT never saves whole embeddings for "targeted" layers when rows are trained
        return self.peft_config[adapter_name].trainable_token_indices is None

    def check_adapter_state(self, adapter_name: str, state: Mapping[str, torch.Tensor]) -> None:
        """Also refuse LoRA factors that are not whole 2-D matrices: an empty or 1-D `lora_A`/`lora_B` is
        what a ZeRO-3 / FSDP shard looks like when the parameters were not gathered before saving."""
        super().check_adapter_state(adapter_name, state)
        bad = [
            f"{key} {tuple(t.shape)}"
            for key, t in state.items()
            if key.endswith((".lora_A.weight", ".lora_B.weight")) and (t.dim() < 2 or t.numel() == 0)
        ]
        if bad:
            raise ValueError(
                f"Adapter {adapter_name!r}: LoRA factors {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} are empty "
                f"or 1-D, which means DeepSpeed ZeRO-3 / FSDP shards were not gathered before saving; nothing was "
                f"written. Gather them first: `with deepspeed.zero.GatheredParameters(list(model.parameters()), "
                f"modifier_rank=None): model.save_pretrained(...)` (ZeRO-3), or pass the full state dict "
                f"(`state_dict=get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))`, FSDP2) "
                f"and save on one rank. See docs/distributed.md."
            )

    def convert_adapter_for_saving(
        self, adapter_name: str, config: LoraConfig, state: dict[str, torch.Tensor], initial_adapter_path: str
    ) -> tuple[LoraConfig, dict[str, torch.Tensor]]:
        """PiSSA / OLoRA / CorDA / LoRA-GA -> a plain rank-2r LoRA for the original base (see `conversion`)."""
        return convert_to_plain_lora(config, state, initial_adapter_path)

    def _check_merge_allowed(self) -> None:
        super()._check_merge_allowed()
        if self.__dict__.get("_replicated_layers") is not None:
            raise ValueError(f"Can't merge: {MERGE_REFUSAL}.")

    # -- calls ------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if not self._uses_alora():
            return self.model.forward(*args, **kwargs)
        with self._alora_offsets(args, kwargs):
            return self.model.forward(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if not self._uses_alora():
            return self.model.generate(*args, **kwargs)
        with self._alora_offsets(args, kwargs):  # found once, in the prompt (see variants.alora)
            return self.model.generate(*args, **kwargs)

    def _uses_alora(self) -> bool:
        return any(getattr(c, "alora_invocation_tokens", None) for c in self.peft_config.values())

    def _alora_offsets(self, args: tuple, kwargs: dict) -> Any:
        plan = current_batch_plan()
        names = plan.adapter_names if plan is not None else None
        return activation_offsets(self.peft_config, self.active_adapters[0], args, kwargs, names)

    # -- loading ----------------------------------------------------------------------------
    def remap_state_dict_for_load(
        self, adapter_name: str, state: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        """Per-expert LoRA weights saved with transformers 4 are fused for the stacked experts of
        transformers 5 (see `moe_conversion`)."""
        return moe_conversion.convert_state_dict(state, self.model, self._param_factor_key)

    def _param_factor_key(self, holder: str, parameter: str, factor: str) -> str | None:
        """File key of LoRA factor `factor` of the wrapper adapting `holder.parameter` (holder as in the file)."""
        prefix = "base_model.model."
        path = holder[len(prefix) :] if holder.startswith(prefix) else holder
        try:
            module = self.model.get_submodule(path)
        except AttributeError:
            return None
        depth = 0
        while isinstance(module, ParamWrapper):
            if module.parameter_name == parameter:
                return f"{holder}{'.base_layer' * depth}.lora_{factor}.weight"
            module = module._modules["base_layer"]
            depth += 1
        return None

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
        for name in adapters:
            if name in self.peft_config and self.peft_config[name].target_parameters:
                raise ConfigError(
                    f"add_weighted_adapter does not support adapters that target parameters (adapter {name!r} uses "
                    f"target_parameters)."
                )
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

    def _get_kasa_loss(self, adapter_names: str | Sequence[str] | None = None) -> torch.Tensor | float:
        """KaSA's regularisation (Hugging Face PEFT's name): add it to the task loss when training KaSA adapters
        (`beta`/`gamma` of each adapter's KasaConfig); 0.0 when none of `adapter_names` (default: the active
        adapters) uses KaSA."""
        if adapter_names is None:
            adapter_names = self.active_adapters
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        return kasa_loss(self.model.modules(), self.peft_config, names)

    def _get_monteclora_loss(self, adapter_names: str | Sequence[str] | None = None) -> torch.Tensor | float:
        """MonteCLoRA's variational loss (Hugging Face PEFT's name), the mean over its layers; add it to the task
        loss when training. 0.0 in eval mode and when none of `adapter_names` (default: active) uses MonteCLoRA."""
        if adapter_names is None:
            adapter_names = self.active_adapters
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        return monteclora_loss(self.model.modules(), names)

    def set_scale(self, adapter: str, scale: float) -> None:
        """Scale adapter `adapter`'s contribution by `scale` relative to its configured alpha/r."""
        for layer in self.tuner_layers():
            if isinstance(layer, LoraLayer):
                layer.set_scale(adapter, scale)
