"""Peek at the weights saved next to a config being loaded (safetensors header only, no tensor data).

Hugging Face PEFT's BOFT needs a CUDA extension for more than one butterfly factor; without it (e.g. on
CPU) HF silently builds `boft_R` with a single factor while the saved config keeps the requested
`boft_n_butterfly_factor`. The shape of the saved `boft_R` (`[factors, blocks, b, b]`) tells what was
really trained, so the loader follows the file instead of failing on a shape mismatch.
"""

from __future__ import annotations

import json
import os
import struct

_SAFETENSORS = "adapter_model.safetensors"
_BIN = "adapter_model.bin"


def saved_shapes(directory: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape in the adapter weights file of `directory` (empty when there is none)."""
    path = os.path.join(directory, _SAFETENSORS)
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return {}
            (size,) = struct.unpack("<Q", raw)
            if size > 100_000_000:
                return {}
            try:
                header = json.loads(fh.read(size))
            except (ValueError, UnicodeDecodeError):
                return {}
        return {k: tuple(v.get("shape", ())) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    path = os.path.join(directory, _BIN)
    if os.path.isfile(path):
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # unreadable here: the normal loader reports it properly
            return {}
        return {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
    return {}


def saved_butterfly_factors(config_path: str | None) -> int | None:
    """The number of butterfly factors of the `boft_R` tensors saved next to `config_path`, if any."""
    if not config_path or not os.path.isfile(config_path):
        return None
    factors = {shape[0] for key, shape in saved_shapes(os.path.dirname(config_path)).items()
               if key.split(".")[-1] == "boft_R" and len(shape) == 4}
    return factors.pop() if len(factors) == 1 else None
