"""Hotswapping: replace a loaded adapter's weights in place, also on a `torch.compile`d model.

Hugging Face PEFT's `peft.utils.hotswap` API (same names and arguments): `hotswap_adapter`,
`hotswap_adapter_from_state_dict`, `prepare_model_for_compiled_hotswap`,
`check_hotswap_configs_compatible`. Serving one base model with many adapters this way keeps a
compiled graph: the adapter's tensors stay the same objects with the same shapes, only their values
change.

Core does what is the same for every method: it matches the new adapter's tensors to the loaded
adapter's structurally (as loading does), checks all of them before changing anything, copies them
in place (zero-padded into larger tensors), and clears layers the new adapter does not target. A
method opts in with a `HotswapSupport` on its tuner class (`BaseTuner.hotswap_support`) saying which
config fields two adapters must share, how its per-adapter settings follow a new config, and how
to prepare its layers for compilation (e.g. LoRA turns its scalings into tensors and pads ranks).
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any, Literal, Mapping

import torch
from torch import nn

from .config import PeftConfig
from .errors import HotswapError
from .registry import method_for_config
from .state_dict import (
    _accept_nested_keys,
    adapter_layers,
    _assign,
    _base_model_prefix,
    _dtype_kind,
    _normalise_prefix,
    _peek,
    _preview,
    adapter_key_map,
)
from .tuners.layer import BaseTunerLayer
from .tuners.walk import modules as walk_modules

__all__ = [
    "HotswapSupport",
    "check_hotswap_configs_compatible",
    "copy_padded",
    "hotswap_adapter",
    "hotswap_adapter_from_state_dict",
    "prepare_model_for_compiled_hotswap",
]

# Set on the (uncompiled) model by prepare_model_for_compiled_hotswap: the rank its tensors were padded to.
_PREPARED_RANK = "_peft_compiled_hotswap_rank"


class HotswapSupport:
    """What a method declares to take part in hotswapping; set an instance as its tuner's `hotswap_support`."""

    config_keys: tuple[str, ...] = ()
    """Config fields that must be equal in two adapters for one to replace the other."""

    def prepare_layer(self, layer: BaseTunerLayer, target_rank: int | None) -> bool:
        """Make `layer` ready for compiled hotswapping: whatever changes between adapters becomes a tensor
        changed in place, and with `target_rank` the tensors are zero-padded to that rank. Return False
        if `layer` is not one of this method's layers."""
        return False

    def prepare_config(self, config: PeftConfig, target_rank: int) -> None:
        """Record `target_rank` in a config once the layers were padded to it."""

    def update_settings(self, layer: BaseTunerLayer, adapter_name: str, config: PeftConfig, module_key: str) -> None:
        """Set `layer`'s per-adapter settings for the new adapter's `config` (`module_key`: the layer's
        name in the base model, for patterns), in place: a tensor setting must stay the same tensor."""

    def copy_into(self, layer: nn.Module, saved_key: str, old: torch.Tensor, new: torch.Tensor) -> None:
        """Write `new` into `old` (equal shapes, or `new` smaller: zero-padded)."""
        copy_padded(old, new)

    def clear_adapter(self, layer: nn.Module, adapter_name: str) -> None:
        """Make the adapter a no-op on `layer` (the new adapter does not target it). Default: zero its tensors."""
        for t in layer.adapter_tensors(adapter_name):
            t.tensor.zero_()


def copy_padded(old: torch.Tensor, new: torch.Tensor) -> None:
    """`old[:n0, :n1, ...] = new` with the rest of `old` zero (a smaller rank in a padded tensor)."""
    if tuple(old.shape) == tuple(new.shape):
        old.copy_(new)
        return
    old.zero_()
    old[tuple(slice(0, n) for n in new.shape)].copy_(new)


def check_hotswap_configs_compatible(config0: PeftConfig, config1: PeftConfig) -> None:
    """Raise `HotswapError` unless an adapter with `config1` can replace one with `config0` in place:
    same method, the method supports hotswapping, and the fields it names are equal (settings that
    hotswapping does not change, e.g. LoRA's `use_rslora`, `lora_dropout`, `alpha_pattern`, `use_dora`)."""
    if config0.peft_type != config1.peft_type:
        raise HotswapError(
            f"Incompatible PEFT types found: {config0.peft_type} and {config1.peft_type}; an adapter can only be "
            f"hotswapped for one of the same method."
        )
    support = _support_for(config0)
    first, second = config0.to_dict(), config1.to_dict()
    missing = object()
    for key in support.config_keys:
        value0, value1 = first.get(key, missing), second.get(key, missing)
        if value0 != value1:
            raise HotswapError(
                f"Configs are incompatible for hotswapping: {key} is {value0!r} in the loaded adapter and {value1!r} in "
                f"the new one. Load the new adapter with load_adapter instead (that recompiles a compiled model)."
            )


def prepare_model_for_compiled_hotswap(
    model: nn.Module,
    *,
    target_rank: int | None = None,
    config: PeftConfig | Mapping[str, PeftConfig] | None = None,
    check_compiled: Literal["error", "warn", "ignore"] = "error",
) -> None:
    """Prepare a model with its first adapter loaded for hotswapping after `torch.compile`.

    Call it after loading the adapter and before compiling when later adapters differ in rank or
    scaling: settings become tensors changed in place, and with `target_rank` (the largest rank of
    the adapters to come) the adapter tensors are zero-padded to it. `config` (one config or a dict
    of them) gets its rank set to `target_rank`. The model is changed in place.
    """
    if check_compiled not in ("error", "warn", "ignore"):
        raise ValueError(f"check_compiled must be 'error', 'warn' or 'ignore', got {check_compiled!r}.")
    if _is_compiled(model):
        if check_compiled == "error":
            raise HotswapError("Call prepare_model_for_compiled_hotswap *before* compiling the model.")
        if check_compiled == "warn":
            warnings.warn(
                "prepare_model_for_compiled_hotswap was called on a model that is already compiled; the changes will "
                "make it recompile. Call it before compiling the model.",
                UserWarning,
                stacklevel=2,
            )
    if target_rank is not None and (isinstance(target_rank, bool) or not isinstance(target_rank, int) or target_rank <= 0):
        raise ValueError(f"target_rank must be a positive integer, got {target_rank!r}.")
    root = _unwrap(model)
    supports = []
    for cfg in _peft_configs(root).values():
        support = getattr(method_for_config(cfg).model_cls, "hotswap_support", None)
        if support is not None and support not in supports:
            supports.append(support)
    found = False
    for layer in walk_modules(root):
        if isinstance(layer, BaseTunerLayer):
            found = any(support.prepare_layer(layer, target_rank) for support in supports) or found
    if not found:
        raise HotswapError(
            "No adapter layers of a method that supports hotswapping were found on the model; call "
            "prepare_model_for_compiled_hotswap after loading the first adapter and before compiling."
        )
    if target_rank is not None:
        root.__dict__[_PREPARED_RANK] = target_rank
        configs = [config] if isinstance(config, PeftConfig) else list((config or {}).values())
        for cfg in configs:
            _support_for(cfg).prepare_config(cfg, target_rank)


def hotswap_adapter_from_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    adapter_name: str,
    config: PeftConfig,
    parameter_prefix: str | None = None,
) -> None:
    """Replace the weights of the loaded adapter `adapter_name` by those in `state_dict`, in place.

    `state_dict` holds the new adapter's tensors under the model's keys (with the adapter name, as
    Hugging Face PEFT expects) or under the file's keys; `config` is its config (ranks, alphas and
    patterns are taken from it). Its targets must be a subset of the loaded adapter's: layers it does
    not target are made no-ops. Everything is checked before anything changes. `parameter_prefix`
    is accepted for Hugging Face PEFT's signature; tensors are matched structurally, not by prefix.
    """
    del parameter_prefix
    root = _unwrap(model)
    support = _support_for(config)
    layers = [(key, model_key, m) for key, model_key, m in adapter_layers(root) if m.has_adapter(adapter_name)]
    if not layers:
        raise HotswapError(f"The model has no adapter named {adapter_name!r} to hotswap; load it first (load_adapter).")
    if any(adapter_name in getattr(m, "merged_adapters", ()) for _, _, m in layers):
        raise HotswapError(
            f"Cannot hotswap adapter {adapter_name!r}: it is merged into the base weights. Call unmerge_adapter() first."
        )
    keymap = adapter_key_map(root, adapter_name)
    incoming = _resolve_keys(keymap, state_dict, _base_model_prefix(root))
    can_grow = not (_is_compiled(model) or _PREPARED_RANK in root.__dict__)

    prefix = _base_model_prefix(root)
    clear: list[nn.Module] = []
    writes: list[tuple[nn.Module, str, str, torch.Tensor, str]] = []  # (layer, saved key, file key, old, model key)
    partial: list[str] = []
    problems: list[str] = []
    for key, model_key, module in layers:
        tensors = module.adapter_tensors(adapter_name)
        saved = [f"{key}.{t.saved_key}" for t in tensors]
        present = [k for k in saved if k in incoming]
        if not present and isinstance(module, BaseTunerLayer):
            clear.append(module)
            continue
        if len(present) != len(saved):
            partial += [k for k in saved if k not in incoming]
            continue
        for t, k in zip(tensors, saved):
            new = _peek(incoming.source, incoming[k])  # header only for a lazily read file
            old = t.tensor
            problem = _check_tensor(k, old, new, can_grow)
            if problem:
                problems.append(problem)
            writes.append((module, t.saved_key, k, old, f"{model_key}.{t.model_key}"))
    if partial:
        raise HotswapError(
            f"The new adapter lacks some tensors of layers it does target ({_preview(partial)}); it is incomplete or of "
            f"another kind. Nothing was changed."
        )
    if problems:
        raise HotswapError(f"Can't hotswap adapter {adapter_name!r}: {'; '.join(problems[:10])}. Nothing was changed.")

    state = incoming.source
    with torch.no_grad():
        for module in clear:
            support.clear_adapter(module, adapter_name)
        for key, _, module in layers:
            if isinstance(module, BaseTunerLayer) and module not in clear:
                module_key = key[len(prefix) + 1 :] if prefix and key.startswith(prefix + ".") else key
                support.update_settings(module, adapter_name, config, module_key)
        for module, saved_key, file_key, old, model_key in writes:
            new = state[incoming[file_key]].to(old.device)
            if all(n <= o for n, o in zip(new.shape, old.shape)) and new.dim() == old.dim():
                support.copy_into(module, saved_key, old, new)
            else:  # a larger rank on an uncompiled, unprepared model: the tensor is replaced
                _assign(root, model_key, old, new)
    configs = _peft_configs(root)
    if adapter_name in configs:
        replacement = copy.deepcopy(config)
        replacement.inference_mode = configs[adapter_name].inference_mode
        configs[adapter_name] = replacement


def hotswap_adapter(
    model: nn.Module,
    model_name_or_path: str | os.PathLike,
    adapter_name: str,
    torch_device: str | torch.device | None = None,
    **kwargs: Any,
) -> None:
    """Replace the loaded adapter `adapter_name` by the adapter saved at `model_name_or_path` (a folder
    or a Hub id; `subfolder`, `revision`, `token`, ... in `kwargs`), keeping its name.

    The configs must be compatible (`check_hotswap_configs_compatible`). On a compiled model, call
    `prepare_model_for_compiled_hotswap` before compiling if ranks or scalings differ; then no
    recompilation happens. `torch_device` is accepted for Hugging Face PEFT's signature: tensors go
    to the device of the tensors they replace.
    """
    from .adapter_files import _check_same_save, _open_peft_weights

    del torch_device
    root = _unwrap(model)
    configs = _peft_configs(root)
    if adapter_name not in configs:
        raise HotswapError(f"The model has no adapter named {adapter_name!r} to hotswap; existing: {list(configs)}.")
    subfolder, revision = kwargs.pop("subfolder", None), kwargs.pop("revision", None)
    config = PeftConfig.from_pretrained(model_name_or_path, subfolder=subfolder, revision=revision, **kwargs)
    check_hotswap_configs_compatible(configs[adapter_name], config)
    weights = _open_peft_weights(model_name_or_path, subfolder=subfolder, revision=revision, **kwargs)
    _check_same_save(weights, config, loaded=True)  # a folder left half-saved is refused, as on load
    hotswap_adapter_from_state_dict(model, weights, adapter_name, config)


# -- helpers ------------------------------------------------------------------------------------
class _Resolved(dict):
    """saved key -> key in `source` (the state dict as given)."""

    source: Mapping[str, torch.Tensor]


def _resolve_keys(
    keymap: Mapping[str, tuple[str, torch.Tensor]], state_dict: Mapping[str, torch.Tensor], prefix: str
) -> _Resolved:
    """Map the incoming keys (file form, or the model's keys with the adapter name) to saved keys;
    raise on keys that name no tensor of the loaded adapter."""
    by_model_key = {model_key: saved for saved, (model_key, _) in keymap.items()}
    normalised = _accept_nested_keys(keymap, _normalise_prefix(keymap, state_dict, prefix))
    resolved = _Resolved()
    resolved.source = normalised
    unexpected = []
    for key in normalised:
        bare = key.removeprefix("_orig_mod.")
        saved = bare if bare in keymap else by_model_key.get(bare)
        if saved is None:
            unexpected.append(key)
        else:
            resolved[saved] = key
    if unexpected:
        raise HotswapError(
            f"Hot swapping the adapter did not succeed: unexpected keys {_preview(unexpected)}. The new adapter targets "
            f"modules (or has tensors) the loaded one does not; hotswapping can only cover the loaded adapter's targets. "
            f"Nothing was changed."
        )
    return resolved


def _check_tensor(key: str, old: torch.Tensor, new: Any, can_grow: bool) -> str | None:
    if not torch.is_tensor(new):
        return f"{key}: not a tensor"
    if _dtype_kind(old) != _dtype_kind(new):
        return f"{key}: file {new.dtype} vs model {old.dtype}"
    if tuple(old.shape) == tuple(new.shape):
        return None
    if new.dim() == old.dim() and all(n <= o for n, o in zip(new.shape, old.shape)):
        return None
    if can_grow:
        return None
    return (
        f"{key}: the new adapter's tensor {tuple(new.shape)} does not fit the prepared one {tuple(old.shape)}; call "
        f"prepare_model_for_compiled_hotswap(model, target_rank=<largest rank of all adapters>) before compiling"
    )


def _support_for(config: PeftConfig) -> Any:
    method = method_for_config(config)
    support = getattr(method.model_cls, "hotswap_support", None)
    if support is None:
        raise HotswapError(
            f"{config.peft_type} adapters can't be hotswapped: {method.module} declares no hotswap support "
            f"({method.model_cls.__name__}.hotswap_support). Load the new adapter with load_adapter and set_adapter."
        )
    return support


def _unwrap(model: nn.Module) -> nn.Module:
    """The module `torch.compile(model)` wraps (`_orig_mod`), or `model`."""
    return model.__dict__.get("_modules", {}).get("_orig_mod", model)


def _is_compiled(model: nn.Module) -> bool:
    return "_orig_mod" in model.__dict__.get("_modules", {}) or bool(model.__dict__.get("_compiled_call_impl"))


def _peft_configs(root: nn.Module) -> dict[str, PeftConfig]:
    configs = getattr(root, "peft_config", None)
    if not isinstance(configs, dict):
        raise HotswapError(f"{type(root).__name__} holds no adapters (no peft_config); load an adapter first.")
    return configs
