"""Reading a `.safetensors` adapter file tensor by tensor, validated by the safetensors library.

`safetensors.safe_open` parses and validates the header (names, dtypes, shapes, offsets that tile
the data exactly: no overlap, no gap, no trailing bytes); a file it refuses is an
`AdapterLoadError`. The tensor data is then read with plain `pread`s from a descriptor opened before
the validation and checked to be the same file, straight into the parameter that receives it
where dtype and layout match. Not through `safe_open.get_tensor`: that maps the whole file, and
its pages would stay resident next to the adapter (two copies at the peak instead of one).
"""

from __future__ import annotations

import ctypes
import json
import os
from typing import Iterator, Mapping

import torch

from .errors import AdapterLoadError

# safetensors dtype names -> torch dtypes (the ones this torch has)
_DTYPES = {
    name: getattr(torch, attr)
    for name, attr in {
        "F64": "float64",
        "F32": "float32",
        "F16": "float16",
        "BF16": "bfloat16",
        "I64": "int64",
        "I32": "int32",
        "I16": "int16",
        "I8": "int8",
        "U8": "uint8",
        "U16": "uint16",
        "U32": "uint32",
        "U64": "uint64",
        "BOOL": "bool",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
    }.items()
    if hasattr(torch, attr)
}


class UnsupportedWeights(Exception):
    """A valid file this reader can't serve lazily (a dtype it does not map); read it eagerly instead."""


def unreadable(path: str, detail: object) -> AdapterLoadError:
    return AdapterLoadError(
        f"{path} is not a readable safetensors file ({detail}). It may be truncated or corrupted: download or save "
        f"the adapter again."
    )


class LazyWeights(Mapping[str, torch.Tensor]):
    """The tensors of a local `.safetensors` file, each read from disk only when it is used.

    Names, dtypes and shapes come from the validated header, so a loader can check every tensor
    against the model before reading any, then read them one at a time (`read_into`). `metadata` is
    the header's string metadata. The file stays open until `close()` (or garbage collection): a
    later save that replaces the path does not change what this object reads.
    """

    def __init__(self, path: str) -> None:
        from safetensors import SafetensorError, safe_open

        self.path = path
        self.metadata: dict[str, str] = {}
        self._specs: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise unreadable(path, exc) from exc
        try:
            opened = os.fstat(self._fd)
            with safe_open(path, framework="pt") as fh:  # the library's validation of the whole header
                names = list(fh.offset_keys())
                self.metadata = dict(fh.metadata() or {})
                declared = {name: (fh.get_slice(name).get_dtype(), tuple(fh.get_slice(name).get_shape())) for name in names}
            now = os.stat(path)
            if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                raise unreadable(path, "the file was replaced while it was being opened (a save in progress?)")
            header_len = int.from_bytes(os.pread(self._fd, 8, 0), "little")
            header = json.loads(os.pread(self._fd, header_len, 8))
            start = 8 + header_len
            for name, (dtype_name, shape) in declared.items():
                entry = header[name]
                if entry["dtype"] != dtype_name or tuple(entry["shape"]) != shape:
                    raise unreadable(path, "the header changed while it was being read")
                dtype = _DTYPES.get(dtype_name)
                if dtype is None:
                    raise UnsupportedWeights(f"{name}: dtype {dtype_name}")
                begin, end = entry["data_offsets"]
                self._specs[name] = (dtype, shape, start + begin, end - begin)
        except UnsupportedWeights:
            self.close()
            raise
        except AdapterLoadError:
            self.close()
            raise
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            self.close()
            raise unreadable(path, exc) from exc

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def __getitem__(self, key: str) -> torch.Tensor:
        dtype, shape, offset, nbytes = self._specs[key]
        out = torch.empty(shape, dtype=dtype)
        self._read(offset, nbytes, out)
        return out

    def __iter__(self) -> Iterator[str]:
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
        if self._fd is None:
            raise unreadable(self.path, "it was closed")
        # the destination's bytes as a writable buffer (no numpy needed)
        view = memoryview((ctypes.c_char * nbytes).from_address(out.data_ptr())).cast("B")
        done = 0
        while done < nbytes:
            n = os.preadv(self._fd, [view[done:]], offset + done) if hasattr(os, "preadv") else self._pread_into(view, done, offset)
            if not n:
                raise unreadable(self.path, "it ended early")
            done += n

    def _pread_into(self, view: memoryview, done: int, offset: int) -> int:  # pragma: no cover - no preadv
        chunk = os.pread(self._fd, len(view) - done, offset + done)
        view[done : done + len(chunk)] = chunk
        return len(chunk)


def safetensors_shapes(path: str) -> Mapping[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, validated by the library (AdapterLoadError if not)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.offset_keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise unreadable(path, exc) from exc
