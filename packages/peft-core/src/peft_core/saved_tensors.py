"""What an adapter weights file holds, read without loading its tensor data.

For methods that must decide something from the saved tensors while only the config is being read
(before the model is built): refuse keys of a format they can't load, or follow the shapes a file
really has. A `.safetensors` file is read from its header alone; a legacy `.bin` file (which has no
separate header) is memory-mapped with `weights_only=True`, so no pickled code runs.
"""

from __future__ import annotations

import json
import os
import struct

import torch

from .serialization import SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME

# safetensors' own limit on the JSON header; a larger one is not a safetensors file.
_MAX_HEADER_BYTES = 100_000_000


def saved_tensor_shapes(directory: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape in the adapter weights file of `directory` (safetensors first, then `.bin`).

    Empty when there is no weights file or it can't be read: the normal loader reports that properly.
    """
    path = os.path.join(directory, SAFETENSORS_WEIGHTS_NAME)
    if os.path.isfile(path):
        return _safetensors_header_shapes(path)
    path = os.path.join(directory, WEIGHTS_NAME)
    if os.path.isfile(path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # unreadable here: the normal loader reports it properly
            return {}
        if not isinstance(state, dict):
            return {}
        return {str(k): tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    return {}


def _safetensors_header_shapes(path: str) -> dict[str, tuple[int, ...]]:
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            return {}
        (size,) = struct.unpack("<Q", raw)
        if size > _MAX_HEADER_BYTES:
            return {}
        try:
            header = json.loads(fh.read(size))
        except (ValueError, UnicodeDecodeError):
            return {}
    if not isinstance(header, dict):
        return {}
    return {
        key: tuple(entry.get("shape", ()))
        for key, entry in header.items()
        if key != "__metadata__" and isinstance(entry, dict)
    }
