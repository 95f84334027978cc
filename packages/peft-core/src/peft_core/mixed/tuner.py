"""`MixedModel`: the tuner of a `PeftMixedModel`, holding adapters of several methods.

Each adapter is injected and managed by its method's own tuner (`BaseTuner.attached`: one per
method, sharing `peft_config`), so a method behaves exactly as in a model of its own. A targeted
module that is already another method's layer is wrapped by the new one: layers nest, the most
recently added method outermost, and the outer layer computes on top of the inner one's output
(Hugging Face PEFT's mixed model works the same way). Merging goes innermost first.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from ..config import PeftConfig
from ..errors import ConfigError, UnsupportedOperationError
from ..registry import PeftMethod, method_for_config, registered_methods
from ..tuners.layer import AdapterTensor, BaseTunerLayer
from ..tuners.tuner import BaseTuner, ModelSnapshot, nested_layers, validate_adapter_name


def mixed_method(config: PeftConfig) -> PeftMethod:
    """The registered method of `config`, refused unless it declared `is_mixed_compatible=True`."""
    method = method_for_config(config)
    if not method.is_mixed_compatible:
        compatible = sorted(m.peft_type for m in registered_methods().values() if m.is_mixed_compatible)
        raise ConfigError(
            f"{config.peft_type} adapters can't be combined with other methods in a PeftMixedModel: {method.module} "
            f"does not register the method with is_mixed_compatible=True (its layers may not compute on top of "
            f"another method's layer). Mixed-compatible methods registered now: {', '.join(compatible) or 'none'}. "
            f"Use a PeftModel (get_peft_model without mixed=True) for {config.peft_type} alone."
        )
    return method


class MixedModel(BaseTuner):
    """Adapters of several mixed-compatible methods in one model (see the module docstring)."""

    def method_tuner(self, adapter_name: str) -> BaseTuner:
        """The tuner of `adapter_name`'s method, following this model's active adapters and mode."""
        method = mixed_method(self.peft_config[adapter_name])
        # method name -> its tuner: a plain dict (not submodules), made on first use (BaseTuner.__init__ injects)
        tuners: dict[str, BaseTuner] = self.__dict__.setdefault("_method_tuners", {})
        tuner = tuners.get(method.name)
        if tuner is None:
            tuner = tuners[method.name] = method.model_cls.attached(self.model, self.peft_config, self.active_adapter)
        tuner.active_adapter = self.active_adapter
        tuner.training = self.training
        return tuner

    def inject_adapter(self, model: nn.Module, adapter_name: str, **options: Any) -> None:
        """Injected by the method's own tuner (its defaults for `low_cpu_mem_usage` / `autocast_adapter_dtype`)."""
        validate_adapter_name(adapter_name)
        tuner = self.method_tuner(adapter_name)
        snapshot = ModelSnapshot(model)
        try:
            tuner.inject_adapter(model, adapter_name, **options)
        except BaseException:
            snapshot.restore(model)  # drop the layers this adapter added; the others' stay
            raise

    # -- hooks: each adapter's method decides ---------------------------------------------------
    def _mark_extra_trainable(self, adapter_name: str) -> None:
        self.method_tuner(adapter_name)._mark_extra_trainable(adapter_name)

    def extra_tensors_to_save(self, adapter_name: str) -> dict[str, torch.Tensor]:
        if adapter_name not in self.peft_config:
            return super().extra_tensors_to_save(adapter_name)
        return self.method_tuner(adapter_name).extra_tensors_to_save(adapter_name)

    def tuner_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        if adapter_name not in self.peft_config:
            return super().tuner_tensors(adapter_name)
        return self.method_tuner(adapter_name).tuner_tensors(adapter_name)

    def remap_state_dict_for_load(
        self, adapter_name: str, state: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        return self.method_tuner(adapter_name).remap_state_dict_for_load(adapter_name, state)

    def adapter_state_dict(self, adapter_name: str) -> dict[str, torch.Tensor] | None:
        if adapter_name not in self.peft_config:
            return None
        return self.method_tuner(adapter_name).adapter_state_dict(adapter_name)

    def load_adapter_state_dict(self, adapter_name: str, state: Mapping[str, torch.Tensor], strict: bool) -> bool:
        return self.method_tuner(adapter_name).load_adapter_state_dict(adapter_name, state, strict)

    def convert_adapter_for_saving(
        self, adapter_name: str, config: PeftConfig, state: dict[str, torch.Tensor], initial_adapter_path: str
    ) -> tuple[PeftConfig, dict[str, torch.Tensor]]:
        return self.method_tuner(adapter_name).convert_adapter_for_saving(adapter_name, config, state, initial_adapter_path)

    def _unload_tuner_state(self) -> None:
        for tuner in self.__dict__.get("_method_tuners", {}).values():
            tuner._unload_tuner_state()

    # -- adapters -------------------------------------------------------------------------------
    def delete_adapter(self, adapter_name: str | Sequence[str]) -> None:  # type: ignore[override]
        """Delete one adapter or a list of them."""
        names = [adapter_name] if isinstance(adapter_name, str) else list(adapter_name)
        unknown = sorted(set(names) - set(self.peft_config))
        if unknown:
            raise ValueError(f"Adapter(s) {unknown} not found; existing adapters: {sorted(self.peft_config)}.")
        for name in names:
            super().delete_adapter(name)

    def add_weighted_adapter(self, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedOperationError(
            "add_weighted_adapter is not supported on a mixed-method model (PeftMixedModel); combine adapters of one "
            "method in a PeftModel of that method."
        )

    # -- merging --------------------------------------------------------------------------------
    def _check_merge_allowed(self) -> None:
        for name in self.peft_config:
            tuner = self.method_tuner(name)
            if not type(tuner).supports_merge:
                raise ValueError(f"{type(tuner).__name__} (adapter {name!r}) does not support merging into the base weights.")

    def merge_adapter(self, adapter_names: Sequence[str] | None = None, safe_merge: bool = False) -> None:
        self._check_merge_allowed()
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        chains = list(self._chains())
        for chain in chains:
            _check_partial_merge(chain, names)
        for chain in chains:
            for layer in reversed(chain):  # innermost first: an outer layer transforms what the inner gives
                layer.merge(safe_merge=safe_merge, adapter_names=names)

    def _chains(self) -> Iterator[list[BaseTunerLayer]]:
        """Each outermost adapter layer with the layers nested in it, outermost first."""
        for _, parent in self._walk_outer(self.model):
            for child in parent._modules.values():
                if isinstance(child, BaseTunerLayer):
                    yield nested_layers(child)


def _check_partial_merge(chain: list[BaseTunerLayer], names: Sequence[str]) -> None:
    """Merging an outer layer's adapter while an inner layer keeps an active adapter unmerged is exact
    only if both just add a weight delta (they commute); refuse anything else before merging anything."""
    kept: list[tuple[BaseTunerLayer, str]] = []  # unmerged active adapters of inner layers
    for layer in reversed(chain):
        merging = [n for n in names if layer.has_adapter(n) and n not in layer.merged_adapters]
        if merging and kept:
            unsafe = [n for n in merging if not layer.supports_delta_weight(n)]
            unsafe += [n for inner, n in kept if not inner.supports_delta_weight(n)]
            if unsafe:
                raise ValueError(
                    f"Can't merge {merging} while the adapters {[n for _, n in kept]} nested inside the same layer stay "
                    f"unmerged: {sorted(set(unsafe))} do not just add a weight delta, so the merged model would differ. "
                    f"Merge all active adapters (merge_adapter() / merge_and_unload()) or deactivate the others first."
                )
        kept += [
            (layer, n)
            for n in layer.active_adapters
            if layer.has_adapter(n) and n not in merging and n not in layer.merged_adapters
        ]
