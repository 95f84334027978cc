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

from . import patterns
from .errors import AdapterLoadError
from .tuners.layer import BaseTunerLayer
from .tuners.modules_to_save import ModulesToSaveWrapper
from .tuners.tuner import BaseTuner, nested_layers

# Embedding layers whose full base weight is saved when they are targeted (HF's rule).
EMBEDDING_LAYER_NAMES = ("embed_tokens", "lm_head")


@dataclass
class LoadReport:
    """What `set_peft_model_state_dict` did not load; empty lists mean an exact fit."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[str] = field(default_factory=list)
    # Keys naming base-model tensors an adapter file may not change (also in `unexpected_keys`).
    refused_keys: list[str] = field(default_factory=list)


# Module names that distributed / checkpointing wrappers insert (FSDP1, torch's checkpoint_wrapper); their
# state dicts drop them, and so do saved keys.
WRAPPER_MODULE_NAMES = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _unwrapped(root: nn.Module) -> nn.Module:
    """`root` without the FSDP1 / checkpoint wrappers around it."""
    while True:
        inner = next((root._modules.get(n) for n in WRAPPER_MODULE_NAMES if root._modules.get(n) is not None), None)
        if inner is None:
            return root
        root = inner


def _clean_key(key: str) -> str:
    if "_wrapped_module" not in key:
        return key
    return ".".join(part for part in key.split(".") if part not in WRAPPER_MODULE_NAMES)


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
            child_key = key if name in WRAPPER_MODULE_NAMES else _join(key, name)
            if isinstance(child, (BaseTunerLayer, ModulesToSaveWrapper)):
                yield child_key, child
            else:
                stack.append((child_key, child))


def adapter_layers(root: nn.Module) -> Iterator[tuple[str, str, BaseTunerLayer | ModulesToSaveWrapper]]:
    """(saved path, model path, module) for every adapter layer and wrapper under `root`, nested ones
    included (a mixed-method model wraps one method's layer in another's): a nested layer's tensors are
    saved under the outer path, as in a file written by a model holding that method alone. A layer that
    declares `saves_nested_path` (one layer per adapted parameter of a module, all of one method) is
    saved under its own path, `base_layer` segments included, as Hugging Face PEFT writes it."""
    for key, module in _adapter_modules(root):
        yield key, key, module
        if isinstance(module, BaseTunerLayer):
            model_key = key
            for inner in nested_layers(module)[1:]:
                model_key = f"{model_key}.base_layer"
                yield (model_key if inner.saves_nested_path else key), model_key, inner


def adapter_key_map(root: nn.Module, adapter_name: str) -> dict[str, tuple[str, torch.Tensor]]:
    """saved key -> (model key, live tensor) for every tensor of `adapter_name` under `root`."""
    out: dict[str, tuple[str, torch.Tensor]] = {}
    for key, model_key, module in adapter_layers(root):
        for t in module.adapter_tensors(adapter_name):
            out[_join(key, t.saved_key)] = (_join(model_key, t.model_key), t.tensor)
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

    `model` is a `PeftModel`, a tuner, or a plain model with injected adapter layers, possibly wrapped
    by FSDP1 or a checkpoint wrapper (their `_fsdp_wrapped_module.` components are not part of the keys).
    `state_dict`, when given (e.g. gathered by a distributed wrapper), supplies the values.
    """
    model = _unwrapped(model)
    if state_dict is not None and any("_wrapped_module" in k for k in state_dict):
        state_dict = {_clean_key(k): v for k, v in state_dict.items()}
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
            result[_join(prefix, _clean_key(key))] = tensor
        if (
            save_embedding_layers == "auto"
            and adapter_name in tuner.peft_config
            and tuner.saves_targeted_embedding_weights(adapter_name)
        ):
            config = tuner.peft_config[adapter_name]
            result.update(_targeted_embedding_weights(model, config, adapter_name, prefix))
        elif save_embedding_layers is True:
            targets = getattr(tuner.peft_config.get(adapter_name), "target_modules", None) or ()
            # HF: when the config names an embedding layer, only embeddings wrapped by an adapter layer are saved
            only_wrapped = any(name in targets for name in EMBEDDING_LAYER_NAMES)
            result.update(_input_output_embedding_weights(tuner.model, prefix, only_wrapped))
        result = tuner.postprocess_saved_state(adapter_name, result)
    return result


def _input_output_embedding_weights(base: nn.Module, prefix: str, only_wrapped: bool = False) -> dict[str, torch.Tensor]:
    """Hugging Face PEFT's `save_embedding_layers=True`: the full weights of the model's input and output
    embeddings, as `<emb>.weight`, or `<emb>.base_layer.weight` where an adapter layer wraps them."""
    ids = _embedding_module_ids(base)
    out: dict[str, torch.Tensor] = {}
    for name, module in base.named_modules():
        inner = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
        if (id(module) not in ids and id(inner) not in ids) or (only_wrapped and inner is module):
            continue
        path = f"{name}.base_layer" if inner is not module else name
        for pname, tensor in inner.named_parameters():
            out[_join(_join(prefix, path), pname)] = tensor
    if not out:
        warnings.warn(
            "save_embedding_layers=True, but the model has no input/output embeddings to save "
            "(get_input_embeddings / get_output_embeddings); nothing extra was saved.",
            UserWarning,
            stacklevel=3,
        )
    return out


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
        if not any(layer.has_adapter(adapter_name) for layer in nested_layers(module)):
            continue
        if isinstance(targets, str):
            relative = key[len(prefix) + 1 :] if prefix and key.startswith(prefix + ".") else key
            if not patterns.fullmatch(targets, relative, patterns.field_label(config, "target_modules")):
                continue
        elif leaf not in targets:
            continue
        for pname, tensor in module.get_base_layer().state_dict(keep_vars=True).items():
            out[f"{key}.base_layer.{pname}"] = tensor
    return out


def writable_base_keys(root: nn.Module, adapter_name: str, load_embedding_layers: bool = False) -> set[str]:
    """Model keys of base-model tensors a file of `adapter_name` may write (everything else it may not).

    - the base tensors the adapter's own config saves with it (`BaseTuner.extra_tensors_to_save`,
      e.g. the biases of a `bias` mode);
    - the base weights of embedding layers the adapter targets (Hugging Face PEFT's
      `save_embedding_layers`, which saves `<embedding>.base_layer.weight`);
    - with `load_embedding_layers=True`, the weights of the model's input and output embeddings
      even where not targeted (Hugging Face PEFT saves those after a vocabulary resize).
    """
    found = _find_tuner(root)
    if found is None:
        return set()
    _, tuner = found
    prefix = _base_model_prefix(root)
    allowed = {_join(prefix, key) for key in tuner.extra_tensors_to_save(adapter_name)}
    embeddings = _embedding_module_ids(tuner.model)
    for key, module in _adapter_modules(root):
        if isinstance(module, BaseTunerLayer) and module.has_adapter(adapter_name):
            if id(module) in embeddings or id(module.get_base_layer()) in embeddings or _is_embedding_name(key):
                allowed.update(f"{key}.base_layer.{name}" for name, _ in module.get_base_layer().named_parameters())
    if load_embedding_layers:
        named = dict(tuner.model.named_modules())
        for name, module in named.items():
            if id(module) in embeddings or (_is_embedding_name(name) and not isinstance(module, BaseTunerLayer)):
                allowed.update(_join(_join(prefix, name), p) for p, _ in module.named_parameters())
    return allowed


def _embedding_module_ids(model: nn.Module) -> set[int]:
    ids = set()
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        fn = getattr(model, getter, None)
        if callable(fn):
            try:
                module = fn()
            except (NotImplementedError, AttributeError):
                module = None
            if isinstance(module, nn.Module):
                ids.add(id(module))
    return ids


def _is_embedding_name(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in EMBEDDING_LAYER_NAMES


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


_NESTING = re.compile(r"(?:\.base_layer)+\.")


def _accept_nested_keys(
    keys: Mapping[str, object], incoming: Mapping[str, torch.Tensor]
) -> Mapping[str, torch.Tensor]:
    """Also accept adapter tensors under a nested layer's path (`q_proj.base_layer.lora_A.weight`, what
    Hugging Face PEFT's `get_peft_model_state_dict` gives for a mixed model), whatever the nesting in
    this model: a key that names no adapter tensor but does once its `.base_layer` steps are dropped."""
    renames = {}
    for key in incoming:
        if key not in keys and ".base_layer." in key:
            canonical = _NESTING.sub(".", key)
            if canonical in keys and canonical not in incoming:
                renames[key] = canonical
    if not renames:
        return incoming
    return _Renamed(incoming, {renames.get(k, k): k for k in incoming})


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
    load_embedding_layers: bool = False,
) -> LoadReport:
    """Load saved adapter tensors into adapter `adapter_name` of `model`.

    Missing or unexpected keys raise `AdapterLoadError` (Hugging Face PEFT would silently load a file
    with misnamed keys as an untrained adapter); with `strict=False` they are reported as a warning
    and skipped. A file may write only the adapter's own tensors, its `modules_to_save` copies and
    the base tensors its config saves with it (`writable_base_keys`: `bias` modes, targeted
    embeddings); a key naming any other base-model tensor (`lm_head.weight`, ...) is refused
    (`strict`) or skipped with a warning, never loaded.
    """
    model = _unwrapped(model)
    found = _find_tuner(model)
    if found is not None:
        peft_model_state_dict = found[1].remap_state_dict_for_load(adapter_name, peft_model_state_dict)
        if found[1].load_adapter_state_dict(adapter_name, peft_model_state_dict, strict):
            return LoadReport()
    keymap = adapter_key_map(model, adapter_name)
    if not keymap:
        raise AdapterLoadError(f"The model has no adapter named {adapter_name!r} to load weights into.")
    incoming = _normalise_prefix(keymap, peft_model_state_dict, _base_model_prefix(model))
    incoming = _accept_nested_keys(keymap, incoming)
    base: dict[str, torch.Tensor] | None = None
    writable: set[str] = set()
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
                writable = writable_base_keys(model, adapter_name, load_embedding_layers)
            model_key = key if key in base else _legacy_base_layer_key(key, base)
            if model_key is None:
                report.unexpected_keys.append(key)
                continue
            if model_key not in writable:  # a base-model tensor this adapter does not own
                report.unexpected_keys.append(key)
                report.refused_keys.append(key)
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
    if report.refused_keys:
        problems.append(
            f"keys that would overwrite base-model tensors outside the adapter {_preview(report.refused_keys)} (an "
            f"adapter file may only change the adapter, its modules_to_save copies and the base tensors its config "
            f"saves: bias modes, targeted embeddings; load_embedding_layers=True also accepts the model's input/output "
            f"embedding weights, as Hugging Face PEFT saves them after a vocabulary resize)"
        )
    others = [k for k in report.unexpected_keys if k not in set(report.refused_keys)]
    if others:
        problems.append(f"unexpected keys {_preview(others)}")
    if problems:
        msg = (
            f"Adapter {adapter_name!r}: the weights file does not fit the model: {'; '.join(problems)}. "
            f"Was it saved for another base model, method or config?"
        )
        if strict:
            raise AdapterLoadError(msg + " Pass strict=False to load the matching keys anyway (the others are skipped).")
        warnings.warn(msg + " Those keys were skipped.", UserWarning, stacklevel=2)

    assigned = False
    with torch.no_grad():
        for model_key, dest, key in assignments:  # one tensor at a time: a lazy file is read here
            if low_cpu_mem_usage or dest.device.type == "meta":
                _assign(model, model_key, dest, incoming[key])
                assigned = True
            else:
                _copy_in(incoming, key, dest)
    if assigned:  # tensors came from the file's device: follow the base layers (as HF does)
        for _, _, module in adapter_layers(model):
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
