"""Reading and writing adapter files: safetensors / legacy .bin weights, model card.

Files are written through `atomic_files` (temp file, then rename; a `WriteBatch` stages every file
of a save and renames them only once all were written). A weights file records the config it was
saved with (`config_binding`), so a folder left half-saved by a crash is refused on load.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import sys
from typing import Any, Mapping

import torch

from .atomic_files import WriteBatch, atomic_write, atomic_write_text  # noqa: F401  (re-exported)
from .config_binding import BIN_METADATA_ATTR
from .errors import AdapterLoadError

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


_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_MAX_HEADER = 100 * 1024 * 1024


class LazyWeights(Mapping[str, torch.Tensor]):
    """The tensors of a local `.safetensors` file, each read from disk only when it is used.

    Names, dtypes and shapes come from the file's header, so a loader can check every tensor against
    the model before reading any, then read them one at a time, straight into the parameter that
    receives them where dtype and layout match (`read_into`). Loading an adapter this way never holds
    the file's tensors next to the adapter's own: peak memory is the adapter plus nothing (plus one
    tensor where a dtype changes), instead of twice the adapter. Plain reads (`pread`), not a memory
    map: no file pages join the process's resident memory.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.metadata: dict[str, str] = {}
        self._specs: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                header_len = int.from_bytes(fh.read(8), "little")
                if not 0 < header_len <= min(_MAX_HEADER, size - 8):
                    raise ValueError(f"header length {header_len} does not fit a {size}-byte file")
                header = json.loads(fh.read(header_len))
            start = 8 + header_len
            for name, info in header.items():
                if name == "__metadata__":
                    self.metadata = dict(info or {})
                    continue
                dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
                if dtype is None:
                    raise _Unsupported(f"{name}: dtype {info.get('dtype')!r}")
                shape = tuple(int(d) for d in info["shape"])
                begin, end = (int(o) for o in info["data_offsets"])
                numel = 1
                for d in shape:
                    numel *= d
                if not (0 <= begin <= end and start + end <= size and end - begin == numel * _itemsize(dtype)):
                    raise ValueError(f"tensor {name!r} ({info}) lies outside the file or does not match its shape")
                self._specs[name] = (dtype, shape, start + begin, end - begin)
        except _Unsupported:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _unreadable(path, exc) from exc

    def __getitem__(self, key: str) -> torch.Tensor:
        dtype, shape, offset, nbytes = self._specs[key]
        out = torch.empty(shape, dtype=dtype)
        self._read(offset, nbytes, out)
        return out

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, key: str) -> tuple[torch.dtype, tuple[int, ...]]:
        """(dtype, shape) of a tensor, from the header (nothing is read)."""
        dtype, shape, _, _ = self._specs[key]
        return dtype, shape

    def read_into(self, key: str, dest: torch.Tensor) -> bool:
        """Read a tensor straight into `dest` when it is a contiguous CPU tensor of the same dtype and
        shape; False (nothing read) otherwise."""
        dtype, shape, offset, nbytes = self._specs[key]
        if dest.device.type != "cpu" or dest.dtype != dtype or tuple(dest.shape) != shape or not dest.is_contiguous():
            return False
        self._read(offset, nbytes, dest)
        return True

    def _read(self, offset: int, nbytes: int, out: torch.Tensor) -> None:
        if nbytes == 0:
            return
        view = memoryview(out.detach().reshape(-1).view(torch.uint8).numpy()).cast("B")
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(offset)
            done = 0
            while done < nbytes:
                n = fh.readinto(view[done:])
                if not n:
                    raise _unreadable(self.path, "it ended early")
                done += n


def _unreadable(path: str, detail: object) -> AdapterLoadError:
    return AdapterLoadError(
        f"{path} is not a readable safetensors file ({detail}). It may be truncated or corrupted: download or save "
        f"the adapter again."
    )


class _Unsupported(Exception):
    """A file `LazyWeights` can't read itself (a dtype it does not know); read it eagerly instead."""


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


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
            raise _unreadable(path, exc) from exc
    found = getattr(data, BIN_METADATA_ATTR, None)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def open_weights_file(path: str) -> Mapping[str, torch.Tensor]:
    """The adapter weights in `path` for loading: a `LazyWeights` for safetensors files on
    little-endian machines, else the tensors read at once (`read_weights_file`). Either has the
    file's `path` and `metadata`."""
    if path.endswith(".safetensors") and sys.byteorder == "little":
        try:
            return LazyWeights(path)
        except _Unsupported:
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
    from .config import _core_version

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
