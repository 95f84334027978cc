"""Adapter state dicts: which tensors belong to an adapter, and loading them back.

Selection is structural: tensors come from the adapter layers themselves (`adapter_tensors`),
never from matching a method's prefix against key strings (prefixes contain one another, and base
models may have modules called `lora_proj`). The adapter name is removed from saved keys at the
exact position the layer reports, and put back the same way on load.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import torch
from torch import nn

from .errors import AdapterLoadError
from .tuners.layer import BaseTunerLayer
from .tuners.modules_to_save import ModulesToSaveWrapper
from .tuners.tuner import BaseTuner

# Embedding layers whose full base weight is saved when they are targeted (HF's rule).
EMBEDDING_LAYER_NAMES = ("embed_tokens", "lm_head")


@dataclass
class LoadReport:
    """What `set_peft_model_state_dict` did not load; empty lists mean an exact fit."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[str] = field(default_factory=list)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _find_tuner(root: nn.Module) -> tuple[str, BaseTuner] | None:
    if isinstance(root, BaseTuner):
        return "", root
    inner = root.__dict__.get("_modules", {}).get("base_model")
    if isinstance(inner, BaseTuner):
        return "base_model", inner
    return None


def _adapter_modules(root: nn.Module) -> Iterator[tuple[str, BaseTunerLayer | ModulesToSaveWrapper]]:
    """Outermost adapter layers and wrappers, with their names relative to `root`."""
    stack: list[tuple[str, nn.Module]] = [("", root)]
    while stack:
        key, module = stack.pop()
        for name, child in module.named_children():
            child_key = _join(key, name)
            if isinstance(child, (BaseTunerLayer, ModulesToSaveWrapper)):
                yield child_key, child
            else:
                stack.append((child_key, child))


def adapter_key_map(root: nn.Module, adapter_name: str) -> dict[str, tuple[str, torch.Tensor]]:
    """saved key -> (model key, live tensor) for every tensor of `adapter_name` under `root`."""
    out: dict[str, tuple[str, torch.Tensor]] = {}
    for key, module in _adapter_modules(root):
        for t in module.adapter_tensors(adapter_name):
            out[_join(key, t.saved_key)] = (_join(key, t.model_key), t.tensor)
    found = _find_tuner(root)
    if found is not None:
        tuner_key, tuner = found
        for t in tuner.tuner_tensors(adapter_name):
            out[_join(tuner_key, t.saved_key)] = (_join(tuner_key, t.model_key), t.tensor)
    return out


def _base_model_prefix(root: nn.Module) -> str:
    found = _find_tuner(root)
    if found is None:
        return ""
    return _join(found[0], "model")


def get_peft_model_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    adapter_name: str = "default",
    save_embedding_layers: bool | str = "auto",
) -> dict[str, torch.Tensor]:
    """The tensors saved for `adapter_name`, under Hugging Face PEFT's file keys.

    `model` is a `PeftModel`, a tuner, or a plain model with injected adapter layers.
    `state_dict`, when given (e.g. gathered by a distributed wrapper), supplies the values.
    """
    found = _find_tuner(model)
    if found is not None:
        custom = found[1].adapter_state_dict(adapter_name)
        if custom is not None:
            return custom
    keymap = adapter_key_map(model, adapter_name)
    if state_dict is not None:
        absent = [model_key for model_key, _ in keymap.values() if model_key not in state_dict]
        if absent:
            raise ValueError(
                f"The state_dict passed for adapter {adapter_name!r} lacks {len(absent)} of its tensors "
                f"({_preview(absent)}); saving would lose them. Pass the model's full state dict (under FSDP "
                f"gather it on every rank with torch.distributed.checkpoint.state_dict.get_model_state_dict(model, "
                f"options=StateDictOptions(full_state_dict=True)) and save on the rank that holds it)."
            )
        result = {saved: state_dict[model_key] for saved, (model_key, _) in keymap.items()}
    else:
        result = {saved: tensor for saved, (_, tensor) in keymap.items()}
    if found is not None:
        _, tuner = found
        prefix = _base_model_prefix(model)
        for key, tensor in tuner.extra_tensors_to_save(adapter_name).items():
            result[_join(prefix, key)] = tensor
        if save_embedding_layers in ("auto", True) and adapter_name in tuner.peft_config:
            config = tuner.peft_config[adapter_name]
            result.update(_targeted_embedding_weights(model, config, adapter_name, prefix))
        result = tuner.postprocess_saved_state(adapter_name, result)
    return result


def _targeted_embedding_weights(
    root: nn.Module, config: object, adapter_name: str, prefix: str
) -> dict[str, torch.Tensor]:
    targets = getattr(config, "target_modules", None)
    if not targets:
        return {}
    out: dict[str, torch.Tensor] = {}
    for key, module in _adapter_modules(root):
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in EMBEDDING_LAYER_NAMES or not isinstance(module, BaseTunerLayer):
            continue
        if not module.has_adapter(adapter_name):
            continue
        if isinstance(targets, str):
            relative = key[len(prefix) + 1 :] if prefix and key.startswith(prefix + ".") else key
            if not re.fullmatch(targets, relative):
                continue
        elif leaf not in targets:
            continue
        for pname, tensor in module.get_base_layer().state_dict(keep_vars=True).items():
            out[f"{key}.base_layer.{pname}"] = tensor
    return out


def _normalise_prefix(
    keys: Mapping[str, object], incoming: Mapping[str, torch.Tensor], prefix: str
) -> Mapping[str, torch.Tensor]:
    """Accept files saved from a plain model (no `base_model.model.`) into a PeftModel, and vice versa.
    Values are not touched (a lazily read file stays unread)."""
    if not prefix or not incoming:
        return incoming
    ours_prefixed = any(k.startswith(prefix + ".") for k in keys)
    theirs_prefixed = any(k.startswith(prefix + ".") for k in incoming)
    if ours_prefixed and not theirs_prefixed:
        return _Renamed(incoming, {f"{prefix}.{k}": k for k in incoming})
    return incoming


class _Renamed(Mapping[str, torch.Tensor]):
    """`source` under other keys, forwarding the lazy-file methods (`spec`, `read_into`)."""

    def __init__(self, source: Mapping[str, torch.Tensor], names: dict[str, str]) -> None:
        self._source, self._names = source, names

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._source[self._names[key]]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def spec(self, key: str) -> tuple[torch.dtype, tuple[int, ...]] | None:
        spec = getattr(self._source, "spec", None)
        return spec(self._names[key]) if spec is not None else None

    def read_into(self, key: str, dest: torch.Tensor) -> bool:
        read_into = getattr(self._source, "read_into", None)
        return read_into(self._names[key], dest) if read_into is not None else False


def _peek(incoming: Mapping[str, torch.Tensor], key: str) -> object:
    """The value under `key`, or for a lazily read file a meta tensor of its dtype and shape (the
    checks need no data, and nothing is read before every tensor was checked)."""
    spec = getattr(incoming, "spec", None)
    found = spec(key) if spec is not None else None
    if found is None:
        return incoming[key]
    dtype, shape = found
    return torch.empty(shape, dtype=dtype, device="meta")


def _copy_in(incoming: Mapping[str, torch.Tensor], key: str, dest: torch.Tensor) -> None:
    """`dest.copy_(incoming[key])`; a lazily read file is read straight into `dest` where it can be."""
    read_into = getattr(incoming, "read_into", None)
    bump = getattr(torch.autograd.graph, "increment_version", None)
    if read_into is not None and bump is not None and read_into(key, dest):
        bump(dest)  # written behind autograd's back: mark it changed
        return
    dest.copy_(incoming[key])


def set_peft_model_state_dict(
    model: nn.Module,
    peft_model_state_dict: Mapping[str, torch.Tensor],
    adapter_name: str = "default",
    ignore_mismatched_sizes: bool = False,
    low_cpu_mem_usage: bool = False,
    strict: bool = True,
) -> LoadReport:
    """Load saved adapter tensors into adapter `adapter_name` of `model`.

    Missing or unexpected keys raise `AdapterLoadError` (Hugging Face PEFT would silently load a file
    with misnamed keys as an untrained adapter); with `strict=False` they are reported as a warning.
    Keys naming base-model tensors (saved `bias` / embedding extras) are loaded into the base model.
    """
    found = _find_tuner(model)
    if found is not None:
        peft_model_state_dict = found[1].remap_state_dict_for_load(adapter_name, peft_model_state_dict)
        if found[1].load_adapter_state_dict(adapter_name, peft_model_state_dict, strict):
            return LoadReport()
    keymap = adapter_key_map(model, adapter_name)
    if not keymap:
        raise AdapterLoadError(f"The model has no adapter named {adapter_name!r} to load weights into.")
    incoming = _normalise_prefix(keymap, peft_model_state_dict, _base_model_prefix(model))
    base: dict[str, torch.Tensor] | None = None
    report = LoadReport()
    assignments: list[tuple[str, torch.Tensor, str]] = []  # (model key, destination, key in `incoming`)
    wrong_dtype: list[str] = []
    for key in incoming:
        value = _peek(incoming, key)
        if key in keymap:
            model_key, dest = keymap[key]
        else:
            if base is None:
                base = dict(model.named_parameters())
                base.update(model.named_buffers())
            model_key = key if key in base else _legacy_base_layer_key(key, base)
            if model_key is None:
                report.unexpected_keys.append(key)
                continue
            dest = base[model_key]
        if not torch.is_tensor(value):
            wrong_dtype.append(f"{key}: file holds a {type(value).__name__}, not a tensor")
            continue
        if _dtype_kind(dest) != _dtype_kind(value):
            wrong_dtype.append(f"{key}: file {value.dtype} vs model {dest.dtype}")
            continue
        if tuple(dest.shape) != tuple(value.shape):
            report.mismatched_keys.append(f"{key}: file {tuple(value.shape)} vs model {tuple(dest.shape)}")
            continue
        assignments.append((model_key, dest, key))
    report.missing_keys = [k for k in keymap if k not in incoming]

    if wrong_dtype:
        raise AdapterLoadError(
            f"Adapter {adapter_name!r}: tensors of the wrong kind of dtype: {'; '.join(wrong_dtype[:10])}"
            f"{' ...' if len(wrong_dtype) > 10 else ''}. Floating-point parameters need floating-point values "
            f"(fp16/bf16/fp32 are converted); an integer or boolean tensor there means a corrupted or foreign file. "
            f"Save the adapter again from its training run."
        )

    if report.mismatched_keys:
        msg = "Adapter tensors have the wrong shape: " + "; ".join(report.mismatched_keys[:10])
        if not ignore_mismatched_sizes:
            raise AdapterLoadError(
                msg + ". The adapter was saved for a different base model or config (rank, targets). "
                "Pass ignore_mismatched_sizes=True to skip those tensors."
            )
        warnings.warn(msg + " (skipped).", UserWarning, stacklevel=2)
    problems = []
    if report.missing_keys:
        problems.append(f"missing keys {_preview(report.missing_keys)}")
    if report.unexpected_keys:
        problems.append(f"unexpected keys {_preview(report.unexpected_keys)}")
    if problems:
        msg = (
            f"Adapter {adapter_name!r}: the weights file does not fit the model: {'; '.join(problems)}. "
            f"Was it saved for another base model, method or config?"
        )
        if strict:
            raise AdapterLoadError(msg + " Pass strict=False to load the matching keys anyway.")
        warnings.warn(msg, UserWarning, stacklevel=2)

    assigned = False
    with torch.no_grad():
        for model_key, dest, key in assignments:  # one tensor at a time: a lazy file is read here
            if low_cpu_mem_usage or dest.device.type == "meta":
                _assign(model, model_key, dest, incoming[key])
                assigned = True
            else:
                _copy_in(incoming, key, dest)
    if assigned:  # tensors came from the file's device: follow the base layers (as HF does)
        for _, module in _adapter_modules(model):
            if isinstance(module, BaseTunerLayer) and module.has_adapter(adapter_name):
                module.move_adapter_to_base_device(adapter_name)
    return report


def _legacy_base_layer_key(key: str, base: Mapping[str, torch.Tensor]) -> str | None:
    """Files from PEFT <= 0.6 saved `<target>.bias`; today the tensor is `<target>.base_layer.bias`."""
    module, _, param = key.rpartition(".")
    candidate = f"{module}.base_layer.{param}"
    return candidate if candidate in base else None


def _assign(root: nn.Module, model_key: str, dest: torch.Tensor, value: torch.Tensor) -> None:
    module_path, _, name = model_key.rpartition(".")
    module = root.get_submodule(module_path) if module_path else root
    device = dest.device if dest.device.type != "meta" else value.device
    dtype = dest.dtype if dest.is_floating_point() else value.dtype
    new = value.to(device=device, dtype=dtype)
    if isinstance(dest, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=dest.requires_grad))
    else:
        module.register_buffer(name, new)


def _dtype_kind(tensor: torch.Tensor) -> str:
    """Values may change precision on load (fp16 -> fp32), never kind (int -> float, float -> bool)."""
    if tensor.dtype == torch.bool:
        return "bool"
    if tensor.is_complex():
        return "complex"
    return "float" if tensor.is_floating_point() else "int"


def _preview(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)} in all)"
