"""What an adapter weights file holds, read without loading its tensor data.

For methods that must decide something from the saved tensors while only the config is being read
(before the model is built): refuse keys of a format they can't load, or follow the shapes a file
really has. A `.safetensors` file is read from its header alone (validated by the safetensors library); a legacy `.bin` file (which has no
separate header) is memory-mapped with `weights_only=True`, so no pickled code runs.
"""

from __future__ import annotations

import os

import torch

from .errors import PeftError
from .lazy_weights import safetensors_shapes
from .serialization import SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME


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
    try:
        return dict(safetensors_shapes(path))  # validated by the safetensors library; no tensor is read
    except PeftError:
        return {}
