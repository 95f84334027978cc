"""Reading and writing adapter files: safetensors / legacy .bin weights, model card.

Files are written through `atomic_files` (temp file, then rename; a `WriteBatch` stages every file
of a save and renames them only once all were written). A weights file records the config it was
saved with (`config_binding`), so a folder left half-saved by a crash is refused on load.
"""

from __future__ import annotations

import collections
import os
import pickle
import sys
from typing import Any, Mapping

import torch

from .atomic_files import WriteBatch, atomic_write, atomic_write_text  # noqa: F401  (re-exported)
from .config_binding import BIN_METADATA_ATTR
from .errors import AdapterLoadError
from .lazy_weights import LazyWeights, UnsupportedWeights, unreadable  # noqa: F401  (LazyWeights re-exported)

CONFIG_NAME = "adapter_config.json"
SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors"
WEIGHTS_NAME = "adapter_model.bin"
SAFETENSORS_METADATA = {"format": "pt"}


def _detach_for_saving(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous, non-aliasing CPU tensors, as safetensors requires."""
    out: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, tensor in state_dict.items():
        if type(tensor).__name__ == "DTensor":  # torch.distributed's sharded tensor (FSDP2, tensor parallel)
            raise ValueError(
                f"{key} is a sharded DTensor: each process holds only a piece of it, and gathering it needs every "
                f"process. Gather the full state on every rank first, then save from one: `state = "
                f"torch.distributed.checkpoint.state_dict.get_model_state_dict(model, options=StateDictOptions("
                f"full_state_dict=True))`, `model.save_pretrained(path, state_dict=state, is_main_process=rank == 0)`."
            )
        t = tensor.detach().cpu()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if not t.is_contiguous():
            t = t.contiguous()
        elif ptr is not None and ptr in seen_storages:
            t = t.clone()
        elif ptr is not None:
            seen_storages.add(ptr)
        out[key] = t
    return out


def save_weights(
    state_dict: Mapping[str, torch.Tensor],
    directory: str,
    safe_serialization: bool = True,
    batch: WriteBatch | None = None,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Write the adapter weights file; returns its path.

    `metadata` (string -> string) goes into the safetensors header next to `{"format": "pt"}`, or
    onto the `.bin` dict as its `peft_metadata` attribute. With a `batch`, the file is staged, and a
    weights file of the other format in `directory` is deleted when the batch commits: a stale
    safetensors file before the new `.bin` appears (loading prefers safetensors, so it would win),
    a stale `.bin` after the new safetensors file is in place.
    """
    tensors = _detach_for_saving(state_dict)
    extra = dict(metadata or {})
    if safe_serialization:
        from safetensors.torch import save_file

        path = os.path.join(directory, SAFETENSORS_WEIGHTS_NAME)
        header = {**extra, **SAFETENSORS_METADATA}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header), batch)
        if batch is not None:
            batch.remove_on_commit(os.path.join(directory, WEIGHTS_NAME))
    else:
        path = os.path.join(directory, WEIGHTS_NAME)
        ordered = collections.OrderedDict(tensors)
        if extra:
            setattr(ordered, BIN_METADATA_ATTR, extra)
        if batch is not None:
            batch.remove_on_commit(os.path.join(directory, SAFETENSORS_WEIGHTS_NAME), before=True)
        atomic_write(path, lambda tmp: torch.save(ordered, tmp), batch)
    return path


def read_weights_file(path: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a `.safetensors` or legacy `.bin` adapter file; never runs pickled code."""
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise AdapterLoadError(
                f"{path} is not a readable safetensors file ({exc}). It may be truncated or corrupted: "
                f"download or save the adapter again."
            ) from exc
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AdapterLoadError(
            f"Refusing to load {path}: it is not a plain tensor checkpoint (loading it would need to run "
            f"arbitrary pickled code: {exc}). Convert it to adapter_model.safetensors from a trusted environment."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise AdapterLoadError(f"{path} is not a readable torch checkpoint ({exc}); save the adapter again.") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in data.items()):
        raise AdapterLoadError(f"{path} must hold a flat dict of name -> tensor, found {type(data).__name__}.")
    return data


class LoadedWeights(dict):
    """Tensors read at once, with the file's `path` and its `metadata` (see `weights_metadata`)."""

    path: str = ""
    metadata: dict[str, str] = {}


def weights_metadata(path: str, data: Mapping[str, torch.Tensor] | None = None) -> dict[str, str]:
    """String metadata a weights file carries: the safetensors header's, or the `.bin` dict's `peft_metadata`."""
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as fh:
                return dict(fh.metadata() or {})
        except (SafetensorError, OSError, ValueError) as exc:
            raise unreadable(path, exc) from exc
    found = getattr(data, BIN_METADATA_ATTR, None)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def open_weights_file(path: str) -> Mapping[str, torch.Tensor]:
    """The adapter weights in `path` for loading: a `LazyWeights` for safetensors files on
    little-endian machines, else the tensors read at once (`read_weights_file`). Either has the
    file's `path` and `metadata`."""
    if path.endswith(".safetensors") and sys.byteorder == "little":
        try:
            return LazyWeights(path)
        except UnsupportedWeights:
            pass
    data = read_weights_file(path)
    loaded = LoadedWeights(data)
    loaded.path, loaded.metadata = path, weights_metadata(path, data)
    return loaded


def write_model_card(
    directory: str,
    *,
    base_model: str | None,
    tags: list[str],
    pipeline_tag: str | None,
    batch: WriteBatch | None = None,
) -> None:
    """A minimal README.md with the front matter the Hub uses; an existing README is left alone."""
    path = os.path.join(directory, "README.md")
    if os.path.exists(path):
        return
    from .core_version import core_version as _core_version

    lines = ["---"]
    if base_model:
        lines.append(f"base_model: {base_model}")
    lines.append("library_name: peft")
    if pipeline_tag:
        lines.append(f"pipeline_tag: {pipeline_tag}")
    if tags:
        lines.append("tags:")
        lines.extend(f"- {t}" for t in sorted(set(tags)))
    lines += [
        "---",
        "",
        "# Adapter",
        "",
        "Saved with peft-core; loads with Hugging Face PEFT (`PeftModel.from_pretrained`) and peft-core.",
        "",
        "### Framework versions",
        "",
        f"- peft-core {_core_version()}",
        "",
    ]
    atomic_write_text(path, "\n".join(lines), batch)


def describe_tensors(state_dict: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state_dict.items())[:5])
