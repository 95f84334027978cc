"""`BaseTuner`: injects a method's layers into a model and manages its adapters.

A method's model class subclasses it, sets `prefix`, and implements `_create_and_replace`
(build or update the adapter layer for one targeted module). Everything else (matching, several
adapters, trainable flags, merge/unload, modules_to_save) is shared. Methods that need special
behaviour override the small hooks documented below; core never branches on a method's name.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..config import PeftConfig
from ..delegation import attribute_or_wrapped
from ..errors import (
    AdapterStateError,
    ConfigError,
    UnsupportedOperationError,
)
from .adapter_names import validate_adapter_name
from .bias import (
    base_bias_tensors,
    bias_entries,
    bias_mode,
    check_single_bias_adapter,
    mark_biases_trainable,
    renamed_bias_tensors,
)
from .creation_guard import guard_adapter_creation
from .dispatch import check_quantized_target
from .layer import AdapterTensor, BaseTunerLayer
from .matching import (
    ALL_LINEAR,
    check_layers_to_transform,
    compact_target_names,
    match_parameter_targets,
)
from .mixed_batch import BASE_ADAPTER_NAME
from .modules_to_save import ModulesToSaveWrapper
from . import target_selection
from .snapshot import ModelSnapshot, outer_modules
from .target_selection import _adapter_names_of, model_type_of, nested_layers  # noqa: F401 (re-exported)
from .tuner_state import TunerState
from .walk import modules as walk_modules
from .walk import named_modules as walk_named_modules
from .walk import parameters as walk_parameters

# Hugging Face PEFT replaces target lists of this length or more by their shortest unique suffixes.
MIN_TARGETS_FOR_COMPACTION = 20
class BaseTuner(nn.Module):
    """Base of every layer-injecting method's model class (`LoraModel`, ...).

    Hooks for subclasses:
    - `_create_and_replace(config, adapter_name, target, target_name, parent, current_key)`: required.
    - `_prepare_adapter_config(config, model)`: fill defaults (core fills `target_modules` from the
      method's registered defaults).
    - `_check_new_adapter_config(config)`: refuse an adapter that can't coexist with existing ones.
    - `_match(config, named)`: which modules are targets (default: the `target_modules` / `exclude_modules`
      rules); methods whose targets are chosen otherwise (the top N attention modules) override it.
    - `_mark_extra_trainable(adapter_name)`: extra trainable parameters (e.g. LoRA's `bias` modes).
    - `extra_tensors_to_save(adapter_name)`: base-model tensors saved with the adapter (bias modes).
    - `tuner_tensors(adapter_name)`: tensors owned by the tuner itself (`base_model.<name>` keys).
    - `_create_and_replace_parameter(...)`: adapt one `nn.Parameter` selected by the config's
      `target_parameters` (methods that support parameter targets).
    - `_add_auxiliary_layers(config, adapter_name, low_cpu_mem_usage)`: layers added besides the targets.
    - `saves_targeted_embedding_weights(adapter_name)`: the `save_embedding_layers="auto"` rule.
    - `postprocess_saved_state` / `remap_state_dict_for_load`: a compact file form and its inverse.

    A target that is already another method's adapter layer is wrapped (nested) only in a
    mixed-method model: `_create_and_replace` asks `wrapped_base(target, key)` for the module whose
    type decides the new layer, and wraps `target` itself.
    """

    prefix: ClassVar[str] = ""
    compact_large_target_lists: ClassVar[bool] = True
    supports_merge: ClassVar[bool] = True
    # Whether the tuner owns tensors shared by its layers (it fills `tuner_tensors`): such adapters need the
    # tuner, so `inject_adapter_in_model` refuses them (Hugging Face PEFT's flag of the same name).
    uses_shared_state: ClassVar[bool] = False
    # Whether targets that are other methods' adapter layers may be wrapped (set on the per-method
    # tuners of a mixed-method model, see `attached` and peft_core.mixed).
    allow_nesting: bool = False
    # A `peft_core.hotswap.HotswapSupport` if the method's adapters can be replaced in place (hotswap).
    hotswap_support: ClassVar[Any] = None

    def __init__(
        self,
        model: nn.Module,
        peft_config: PeftConfig | Mapping[str, PeftConfig],
        adapter_name: str = "default",
        low_cpu_mem_usage: bool = False,
        autocast_adapter_dtype: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        # A model with adapters injected in place already (inject_adapter_in_model, transformers' add_adapter)
        # keeps one `peft_config` dict for all of them, as in Hugging Face PEFT.
        existing = model.__dict__.get("peft_config")
        self.peft_config: dict[str, PeftConfig] = existing if isinstance(existing, dict) else {}
        self.active_adapter: str | list[str] = adapter_name
        if isinstance(peft_config, PeftConfig):
            self.peft_config[adapter_name] = peft_config
        else:
            self.peft_config.update(peft_config)
        pristine = ModelSnapshot(model)
        try:
            self.inject_adapter(
                self.model, adapter_name, low_cpu_mem_usage=low_cpu_mem_usage, autocast_adapter_dtype=autocast_adapter_dtype
            )
        except BaseException:
            pristine.restore(model)  # e.g. the third target was unsupported: undo the first two
            raise
        self.model.peft_config = self.peft_config

    @classmethod
    def attached(
        cls, model: nn.Module, peft_config: dict[str, PeftConfig], active_adapter: str | list[str]
    ) -> BaseTuner:
        """A tuner of this method for `model` that injects nothing yet and shares `peft_config` (the same
        dict object): a mixed-method model keeps one per method and lets each add its own adapters
        (`inject_adapter`), wrapping other methods' layers (`allow_nesting`). It is not a submodule of anything."""
        tuner = cls.__new__(cls)
        nn.Module.__init__(tuner)
        tuner.model = model
        tuner.peft_config = peft_config
        tuner.active_adapter = active_adapter
        tuner.allow_nesting = True
        return tuner

    def __getattr__(self, name: str) -> Any:
        return attribute_or_wrapped(self, name, "model")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.forward(*args, **kwargs)

    # -- hooks ------------------------------------------------------------------------------
    def _create_and_replace(
        self,
        config: PeftConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _create_and_replace")

    def _create_and_replace_parameter(
        self,
        config: PeftConfig,
        adapter_name: str,
        holder_key: str,
        parameter_name: str,
        current_key: str,
    ) -> None:
        """Adapt parameter `parameter_name` of the module at `holder_key` (a path in `self.model`, possibly
        inside adapter layers); `current_key` is the parameter's name in the user's model."""
        raise ConfigError(
            f"{type(self).__name__} does not support target_parameters (adapting nn.Parameters directly); "
            f"target modules with target_modules instead."
        )

    def _add_auxiliary_layers(self, config: PeftConfig, adapter_name: str, low_cpu_mem_usage: bool) -> None:
        """Hook: adapter layers a config adds besides its targets (e.g. trainable rows of an embedding),
        put into `self.model` after the targets; they are then frozen, cast and activated like the rest."""
        return None

    def saves_targeted_embedding_weights(self, adapter_name: str) -> bool:
        """Hook: whether a targeted `embed_tokens` / `lm_head` saves its full base weight with the adapter
        (Hugging Face PEFT's `save_embedding_layers="auto"` rule); methods that train only some rows say no."""
        return True

    def wrapped_base(self, target: nn.Module, current_key: str) -> nn.Module:
        """The module whose type decides which layer wraps `target`: `target` itself, or, when it is
        already another method's adapter layer, the module that layer wraps (the new layer then wraps
        `target`, nesting the two). Nesting is refused outside a mixed-method model."""
        if not isinstance(target, BaseTunerLayer):
            return target
        if not self.allow_nesting:
            raise ConfigError(
                f"Target module {current_key!r} is already a {type(target).__name__} of another method; a "
                f"{type(self).__name__} model holds adapters of a single method. To combine methods in one model "
                f"use get_peft_model(..., mixed=True) (PeftMixedModel), or exclude this module."
            )
        return target.get_base_layer()

    def _check_new_adapter_config(self, config: PeftConfig) -> None:
        """Default: at most one adapter may use a `bias` mode (see tuners.bias)."""
        check_single_bias_adapter(self.peft_config, type(self).__name__)

    def _prepare_adapter_config(self, config: PeftConfig, model: nn.Module) -> PeftConfig:
        """Default: an unset `target_modules` takes the method's registered defaults for the model type."""
        return target_selection.fill_default_targets(config, model)

    def _before_injection(self, adapter_name: str) -> None:
        """Hook: set up tuner-held state the new adapter's layers will reference. Default: nothing."""

    def _after_injection(self, adapter_name: str, autocast_adapter_dtype: bool) -> None:
        """Hook: finish the adapter once its layers exist, frozen and cast. Default: nothing."""

    def _bias_entries(self, adapter_name: str) -> dict[str, str]:
        return bias_entries(self.model, bias_mode(self.peft_config.get(adapter_name)), adapter_name)

    def _mark_extra_trainable(self, adapter_name: str) -> None:
        """Default: the base-model biases covered by the adapter's `bias` mode train too."""
        mark_biases_trainable(self.model, self._bias_entries(adapter_name))

    def extra_tensors_to_save(self, adapter_name: str) -> dict[str, torch.Tensor]:
        """Base-model tensors saved with the adapter, keyed by their name in `self.model` (default: biases)."""
        return base_bias_tensors(self.model, self._bias_entries(adapter_name))

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        """Tensors owned by the tuner, saved as `base_model.<saved_key>` (default: renamed biases of
        modules_to_save copies, and the entries of the tuner's `TunerParameterDict` / `TunerModuleDict`
        attributes). Overrides should extend `super().tuner_tensors(...)`."""
        out = renamed_bias_tensors(self.model, self._bias_entries(adapter_name))
        for attr, store in self._tuner_state():
            out += store.adapter_tensors(adapter_name, attr)
        return out

    def _tuner_state(self) -> list[tuple[str, TunerState]]:
        """The tuner's own per-adapter state (see tuners.tuner_state): trained, saved and deleted with
        its adapters like the layers' tensors."""
        return [(name, m) for name, m in self._modules.items() if isinstance(m, TunerState)]

    def remap_state_dict_for_load(
        self, adapter_name: str, state: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        """Hook: inspect or rename incoming file keys before they are matched (refuse legacy
        formats, follow older layouts). Default: unchanged."""
        return state

    def postprocess_saved_state(self, adapter_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Hook: rewrite the tensors about to be saved into a method's compact file form (e.g. VB-LoRA
        keeps only the top-k of its logits); `remap_state_dict_for_load` must undo it. Default: unchanged."""
        return state

    def adapter_state_dict(self, adapter_name: str) -> dict[str, torch.Tensor] | None:
        """Hook: the whole saved state of an adapter, for methods whose file is not a copy of their
        parameters (prompt learning saves the encoder's output). None means the structural default."""
        return None

    def load_adapter_state_dict(self, adapter_name: str, state: Mapping[str, torch.Tensor], strict: bool) -> bool:
        """Hook: load a file written by `adapter_state_dict`; return False to use the structural default."""
        return False

    def check_adapter_state(self, adapter_name: str, state: Mapping[str, torch.Tensor]) -> None:
        """Hook: refuse to save a state that can't be the adapter (called before anything is written).
        Default: tensors of parameters partitioned by DeepSpeed ZeRO-3 (`ds_shape` differs from the local
        shard's shape) are refused with the recipe, since the file would hold empty shards."""
        partitioned = [
            f"{key} {tuple(t.shape)} (full {tuple(t.ds_shape)})"
            for key, t in state.items()
            if getattr(t, "ds_shape", None) is not None and tuple(t.shape) != tuple(t.ds_shape)
        ]
        if partitioned:
            raise ValueError(
                f"Adapter {adapter_name!r}: {len(partitioned)} tensor(s) are DeepSpeed ZeRO-3 partitions, not whole "
                f"tensors ({', '.join(partitioned[:3])}{' ...' if len(partitioned) > 3 else ''}); saving them would "
                f"write an empty adapter. Nothing was written. Gather them first: `with deepspeed.zero.GatheredParameters("
                f"list(model.parameters()), modifier_rank=None): model.save_pretrained(path, is_main_process=rank == 0)`, or "
                f"let the Trainer / accelerate save (`accelerator.get_state_dict(model)` passed as state_dict=...)."
            )

    def convert_adapter_for_saving(
        self,
        adapter_name: str,
        config: PeftConfig,
        state: dict[str, torch.Tensor],
        initial_adapter_path: str,
    ) -> tuple[PeftConfig, dict[str, torch.Tensor]]:
        """Hook for `save_pretrained(path_initial_model_for_weight_conversion=...)`: turn an adapter
        whose initialisation changed the base weights into one that applies to the original base."""
        raise ValueError(
            f"{type(self).__name__} does not support path_initial_model_for_weight_conversion; save without it."
        )

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """Hook for methods that must change generation (virtual tokens); default: the base model's."""
        return self.model.generate(*args, **kwargs)

    # -- injection --------------------------------------------------------------------------
    def inject_adapter(
        self,
        model: nn.Module,
        adapter_name: str,
        low_cpu_mem_usage: bool = False,
        autocast_adapter_dtype: bool = True,
    ) -> None:
        """Create adapter `adapter_name` (its config is `self.peft_config[adapter_name]`) in one walk of `model`."""
        validate_adapter_name(adapter_name)
        self._before_injection(adapter_name)
        config = self.peft_config[adapter_name]
        self._check_new_adapter_config(config)
        config = self._prepare_adapter_config(config, model)
        self.peft_config[adapter_name] = config

        named = walk_named_modules(model)
        by_name = dict(named)
        if isinstance(config.target_modules, str) and config.target_modules.lower() == ALL_LINEAR:
            config.target_modules = self._all_linear_names(model, named, config)

        check_layers_to_transform(config, [n for n, _ in named])
        matched, excluded = self._match(config, named)
        parameters = match_parameter_targets(getattr(config, "target_parameters", None), named)
        if not matched and not parameters:
            self._raise_nothing_matched(config, named, excluded)
        if parameters and not matched and config.target_modules:
            warnings.warn(
                f"target_modules={config.target_modules!r} were set but no module was matched (only parameters "
                f"from target_parameters are adapted).",
                RuntimeWarning,
                stacklevel=3,
            )
        if getattr(config, "target_parameters", None) and not parameters:
            warnings.warn(
                f"target_parameters={config.target_parameters!r} were set but no parameter was matched.",
                RuntimeWarning,
                stacklevel=3,
            )

        method = str(getattr(config, "peft_type", "") or "").lower()
        init_context = torch.device("meta") if low_cpu_mem_usage else contextlib.nullcontext()
        target_layers = [by_name[key] for key in matched]
        with init_context, guard_adapter_creation(config, adapter_name, target_layers, low_cpu_mem_usage) as site:
            for key in matched:
                site.key = key
                parent_key, _, target_name = key.rpartition(".")
                parent = by_name[parent_key]
                target = by_name[key]
                if not isinstance(target, BaseTunerLayer):
                    # a quantized module no dispatcher of this method handles is refused, never wrapped as plain
                    check_quantized_target(method, target, key=key, config=config, model=model)
                self._create_and_replace(config, adapter_name, target, target_name, parent, current_key=key)
            for holder_key, parameter_name, key in parameters:
                if not holder_key:
                    raise ConfigError(
                        f"target_parameters selected {key!r}, a parameter of the top-level model itself; only "
                        f"parameters of submodules can be adapted."
                    )
                self._create_and_replace_parameter(config, adapter_name, holder_key, parameter_name, current_key=key)

        targets = config.target_modules
        if (
            self.compact_large_target_lists
            and isinstance(targets, (set, list, tuple))
            and len(targets) >= MIN_TARGETS_FOR_COMPACTION
        ):
            config.target_modules = compact_target_names(set(matched), [n for n, _ in named])

        self._wrap_modules_to_save(config, adapter_name, named)
        self._add_auxiliary_layers(config, adapter_name, low_cpu_mem_usage)
        adapter_modules = self._freeze_base()  # one walk: freeze everything, collect the adapter modules
        for module in adapter_modules:
            if module.has_adapter(adapter_name):
                module.cast_adapter_dtype(adapter_name, autocast_adapter_dtype)
        self._refresh_trainable(freeze_base=False, adapter_modules=adapter_modules)
        self._after_injection(adapter_name, autocast_adapter_dtype)

    def _match(self, config: PeftConfig, named: Sequence[tuple[str, nn.Module]]) -> tuple[list[str], int]:
        return target_selection.match_targets(config, named)

    def _raise_nothing_matched(self, config: PeftConfig, named: Sequence[tuple[str, nn.Module]], excluded: int) -> None:
        target_selection.raise_nothing_matched(config, named, excluded, self.model)

    def _all_linear_names(
        self, model: nn.Module, named: Sequence[tuple[str, nn.Module]], config: PeftConfig
    ) -> set[str]:
        return target_selection.all_linear_names(model, named, config)

    def _wrap_modules_to_save(self, config: PeftConfig, adapter_name: str, named: Sequence[tuple[str, nn.Module]]) -> None:
        target_selection.wrap_modules_to_save(config, adapter_name, named)

    # -- adapter modules --------------------------------------------------------------------
    def tuner_layers(self) -> Iterator[BaseTunerLayer]:
        return (m for m in walk_modules(self.model) if isinstance(m, BaseTunerLayer))

    def adapter_modules(self) -> Iterator[BaseTunerLayer | ModulesToSaveWrapper | TunerState]:
        layers = (m for m in walk_modules(self.model) if isinstance(m, (BaseTunerLayer, ModulesToSaveWrapper)))
        return itertools.chain(layers, (store for _, store in self._tuner_state()))

    @property
    def active_adapters(self) -> list[str]:
        active = self.active_adapter
        return [active] if isinstance(active, str) else list(active)

    def _freeze_base(self) -> list[Any]:
        """Freeze every parameter of the model; return `self.adapter_modules()` (found in the same walk
        unless a subclass adds modules of its own there)."""
        adapter_modules: list[Any] = []
        for module in walk_modules(self.model):
            for param in module._parameters.values():
                if param is not None and param.requires_grad:
                    param.requires_grad_(False)
            if isinstance(module, (BaseTunerLayer, ModulesToSaveWrapper)):
                adapter_modules.append(module)
        if type(self).adapter_modules is not BaseTuner.adapter_modules:
            return list(self.adapter_modules())
        return adapter_modules + [store for _, store in self._tuner_state()]

    def _refresh_trainable(
        self,
        freeze_base: bool = True,
        adapter_modules: Sequence[BaseTunerLayer | ModulesToSaveWrapper] | None = None,
    ) -> None:
        """Make only the active adapters' parameters trainable (and freeze the base model when injecting)."""
        inference = all(self.peft_config[n].inference_mode for n in self.active_adapters if n in self.peft_config)
        if freeze_base:
            adapter_modules = self._freeze_base()
        for module in adapter_modules if adapter_modules is not None else self.adapter_modules():
            module.set_adapter(self.active_adapters, inference_mode=inference)
        if not inference:
            for name in self.active_adapters:
                self._mark_extra_trainable(name)

    def set_adapter(self, adapter_name: str | Sequence[str]) -> None:
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        for name in names:
            if name not in self.peft_config:
                raise ValueError(f"Adapter {name} does not exist; existing adapters: {list(self.peft_config)}.")
        for module in self.adapter_modules():  # refuse before changing anything
            if isinstance(module, ModulesToSaveWrapper):
                module.check_can_activate(names)
        self.active_adapter = names[0] if len(names) == 1 else names
        self._refresh_trainable(freeze_base=False)

    def delete_adapter(self, adapter_name: str) -> None:
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} does not exist; existing adapters: {list(self.peft_config)}.")
        if any(adapter_name in layer.merged_adapters for layer in self.tuner_layers()):
            raise AdapterStateError(
                f"Cannot delete adapter(s) {[adapter_name]} while they are merged. Please unmerge them first. Adapter "
                f"{adapter_name!r} is merged into the base weights and deleting it would leave its change there for "
                f"good. Call unmerge_adapter() first (or merge_and_unload() to keep the merged model)."
            )
        del self.peft_config[adapter_name]
        for module in list(self.adapter_modules()):
            module.delete_adapter(adapter_name)
        remaining = [n for n in self.active_adapters if n != adapter_name] or list(self.peft_config)[:1]
        self.active_adapter = (remaining[0] if len(remaining) == 1 else remaining) if remaining else []
        if remaining:
            self._refresh_trainable(freeze_base=False)

    def enable_adapter_layers(self) -> None:
        """Enable every adapter layer; the active adapters' parameters train again (unless in inference mode)."""
        for module in self.adapter_modules():
            module.enable_adapters(True)
        self._refresh_trainable(freeze_base=False)

    @contextlib.contextmanager
    def adapters_disabled(self) -> Iterator[None]:
        """Run the base model alone inside the block, with no adapter parameter requiring grad; on
        leaving, every layer's enabled flag and every parameter's `requires_grad` are exactly as before
        (layers that were disabled stay disabled)."""
        modules = list(self.adapter_modules())
        flags = [(m, m._disable_adapters) for m in modules]
        if len({disabled for _, disabled in flags}) > 1:
            warnings.warn(
                "The model contains some adapter layers that are enabled and others that are disabled. This is most "
                "likely unintentional. Leaving the disable_adapter block restores each layer as it was; call "
                "enable_adapter_layers() to enable them all.",
                UserWarning,
                stacklevel=4,
            )
        grads = [(p, p.requires_grad) for p in walk_parameters(self)]
        self.disable_adapter_layers()
        try:
            yield
        finally:
            for module, disabled in flags:
                module.enable_adapters(not disabled)
            for param, flag in grads:
                if param.requires_grad != flag:
                    param.requires_grad_(flag)

    def disable_adapter_layers(self) -> None:
        for name in self.active_adapters:
            mode = bias_mode(self.peft_config.get(name))
            if mode != "none":
                warnings.warn(
                    f"Disabling adapter layers with bias={mode!r} does not give the base model's outputs: the "
                    f"trained biases stay in the base layers.",
                    UserWarning,
                    stacklevel=3,
                )
        for module in self.adapter_modules():
            module.enable_adapters(False)
            for name in _adapter_names_of(module):
                for param in module.adapter_parameters(name):
                    if param.requires_grad:
                        param.requires_grad_(False)  # a disabled adapter does not train (as in Hugging Face PEFT)

    # -- mixed batches ----------------------------------------------------------------------
    def check_adapter_names(self, adapter_names: Sequence[str]) -> None:
        """Refuse a mixed-adapter batch this model can't compute exactly."""
        if self.training:
            raise UnsupportedOperationError("adapter_names=[...] (mixed-adapter batches) is only supported in eval mode; call .eval().")
        unknown = sorted({n for n in adapter_names if n != BASE_ADAPTER_NAME and n not in self.peft_config})
        if unknown:
            raise ValueError(
                f"adapter_names contains unknown adapters {unknown}; existing: {list(self.peft_config)} "
                f"(use {BASE_ADAPTER_NAME!r} for rows that should use no adapter)."
            )
        layers = list(self.tuner_layers())
        unsupported = sorted({type(m).__name__ for m in layers if not m.supports_mixed_batch})
        if unsupported:
            raise UnsupportedOperationError(
                f"{type(self).__name__} layers {unsupported} can't run a mixed-adapter batch; run one forward per "
                f"adapter (set_adapter) instead."
            )
        if any(m.merged for m in layers):
            raise UnsupportedOperationError("Mixed-adapter batches need unmerged adapters; call unmerge_adapter() first.")

    # -- merging ----------------------------------------------------------------------------
    def _check_merge_allowed(self) -> None:
        if not self.supports_merge:
            raise UnsupportedOperationError(f"{type(self).__name__} does not support merging its adapters into the base weights.")

    def _check_merge_request(self, adapter_names: Sequence[str] | None) -> None:
        """Hook: refuse merging `adapter_names` (None: the active ones) before any layer changes. Default: allowed."""

    def merge_adapter(self, adapter_names: Sequence[str] | None = None, safe_merge: bool = False) -> None:
        self._check_merge_allowed()
        self._check_merge_request(adapter_names)
        layers = list(self.tuner_layers())
        if safe_merge:  # all or nothing: every layer is checked before any base weight changes
            for layer in layers:
                layer.check_safe_merge(adapter_names)
        for layer in layers:
            layer.merge(safe_merge=safe_merge, adapter_names=adapter_names)

    def unmerge_adapter(self) -> None:
        for layer in self.tuner_layers():
            layer.unmerge()

    def merge_and_unload(
        self, progressbar: bool = False, safe_merge: bool = False, adapter_names: Sequence[str] | None = None
    ) -> nn.Module:
        """Fold the adapters into the base weights and return the plain base model."""
        self._check_merge_allowed()
        self._check_merge_request(adapter_names)
        return self._unload(merge=True, progressbar=progressbar, safe_merge=safe_merge, adapter_names=adapter_names)

    def unload(self) -> nn.Module:
        """Remove every adapter layer without merging and return the plain base model."""
        return self._unload(merge=False)

    def _unload(
        self,
        merge: bool,
        progressbar: bool = False,
        safe_merge: bool = False,
        adapter_names: Sequence[str] | None = None,
    ) -> nn.Module:
        from tqdm.auto import tqdm

        outermost: list[tuple[nn.Module, str, nn.Module]] = []
        for parent_key, parent in self._walk_outer(self.model):
            for child_name, child in parent.named_children():
                if isinstance(child, (BaseTunerLayer, ModulesToSaveWrapper)):
                    outermost.append((parent, child_name, child))
        if merge and safe_merge:  # all or nothing: check every layer before unloading any
            for _, _, child in outermost:
                if isinstance(child, BaseTunerLayer):
                    child.check_safe_merge(adapter_names)
        desc = "Unloading and merging model" if merge else "Unloading model"
        for parent, child_name, child in tqdm(outermost, disable=not progressbar, desc=desc):
            if isinstance(child, ModulesToSaveWrapper):
                setattr(parent, child_name, child.unwrapped())
                continue
            if merge:
                for layer in reversed(nested_layers(child)):  # innermost first
                    layer.merge(safe_merge=safe_merge, adapter_names=adapter_names)
            setattr(parent, child_name, child.get_base_layer())
        self._unload_tuner_state()
        for _, store in self._tuner_state():
            for name in list(store.keys()):
                store.delete_adapter(name)
        if "peft_config" in self.model.__dict__:
            del self.model.__dict__["peft_config"]
        return self.model

    def _unload_tuner_state(self) -> None:
        """Hook: drop tuner-owned tensors after unloading (e.g. shared projections)."""
        return None

    @staticmethod
    def _walk_outer(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
        """Modules that are not inside an adapter layer or wrapper (those are parents to unload from)."""
        return outer_modules(model)

