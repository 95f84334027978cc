"""Reading and writing adapter files: atomic writes, safetensors / legacy .bin weights, model card.

Writes go to a temporary file in the target folder and are renamed into place, so a crash or a
full disk part-way leaves the previous adapter readable. A `WriteBatch` stages several files
(every file of every adapter that `save_pretrained` writes) and renames them only once all of them
were written, so a failure part-way leaves every previous file in place.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from typing import Any, Callable, Mapping

import torch

from .errors import AdapterLoadError

CONFIG_NAME = "adapter_config.json"
SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors"
WEIGHTS_NAME = "adapter_model.bin"
SAFETENSORS_METADATA = {"format": "pt"}


def _write_temp(path: str, write: Callable[[str], None]) -> str:
    """Call `write(tmp)` on a new temp file next to `path`, flush it to disk, return the temp path."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def _fsync_directory(directory: str) -> None:
    """Make renames in `directory` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class WriteBatch:
    """Stage files as temp files; `commit()` renames them all into place, `discard()` drops them.

    Used as a context manager it commits on success and discards on any exception, so the target
    files are either all replaced or all untouched (short of a crash between two renames).
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []  # (temp path, final path)
        self._removals: list[str] = []

    def write(self, path: str, write: Callable[[str], None]) -> None:
        self._staged.append((_write_temp(path, write), path))

    def remove_on_commit(self, path: str) -> None:
        """Delete `path` (if it exists) when the batch commits, e.g. a weights file in the other format."""
        self._removals.append(path)

    def commit(self) -> None:
        directories = set()
        for tmp, path in self._staged:
            os.replace(tmp, path)
            directories.add(os.path.dirname(os.path.abspath(path)))
        self._staged.clear()
        for path in self._removals:
            if os.path.isfile(path):
                os.unlink(path)
                directories.add(os.path.dirname(os.path.abspath(path)))
        self._removals.clear()
        for directory in sorted(directories):
            _fsync_directory(directory)

    def discard(self) -> None:
        for tmp, _ in self._staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._staged.clear()
        self._removals.clear()

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path: str, write: Callable[[str], None], batch: WriteBatch | None = None) -> None:
    """Call `write(tmp_path)`, then atomically rename the temp file onto `path` (or stage it in `batch`)."""
    if batch is not None:
        batch.write(path, write)
        return
    tmp = _write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def atomic_write_text(path: str, text: str, batch: WriteBatch | None = None) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write, batch)


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
) -> str:
    """Write the adapter weights file; returns its path.

    With a `batch`, the file is staged, and a weights file of the other format in `directory` is
    deleted when the batch commits (loading prefers safetensors, so a stale one would win).
    """
    tensors = _detach_for_saving(state_dict)
    if safe_serialization:
        from safetensors.torch import save_file

        path = os.path.join(directory, SAFETENSORS_WEIGHTS_NAME)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=dict(SAFETENSORS_METADATA)), batch)
        stale = os.path.join(directory, WEIGHTS_NAME)
    else:
        path = os.path.join(directory, WEIGHTS_NAME)
        atomic_write(path, lambda tmp: torch.save(tensors, tmp), batch)
        stale = os.path.join(directory, SAFETENSORS_WEIGHTS_NAME)
    if batch is not None:
        batch.remove_on_commit(stale)
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


def open_weights_file(path: str) -> Mapping[str, torch.Tensor]:
    """The adapter weights in `path` for loading: a `LazyWeights` for safetensors files on
    little-endian machines, else the tensors read at once (`read_weights_file`)."""
    if path.endswith(".safetensors") and sys.byteorder == "little":
        try:
            return LazyWeights(path)
        except _Unsupported:
            pass
    return read_weights_file(path)


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
