"""Recognise OFT adapters in the formats Hugging Face PEFT dropped, so they are refused with a reason.

PEFT <= 0.15 stored OFT as `oft_r` (and `oft_s`) tensors; PEFT 0.16 replaced them by `oft_R.weight`
(packed skew-symmetric blocks), and HF refuses the old keys. peft-core has no hook that shows a method
the incoming keys before they are matched, so the check peeks at the weights file next to the config
being loaded (the safetensors header only, no tensor data).
"""

from __future__ import annotations

import json
import os
import struct

from peft_core import ConfigError

_SAFETENSORS = "adapter_model.safetensors"
_BIN = "adapter_model.bin"


def is_legacy_key(key: str) -> bool:
    """A key holding a pre-0.16 OFT tensor (`...q_proj.oft_r` / `...oft_r.<adapter>`)."""
    parts = key.split(".")
    return "oft_r" in parts or "oft_s" in parts


def weight_keys(directory: str) -> list[str]:
    """Tensor names in the adapter weights file of `directory` (empty when there is none)."""
    path = os.path.join(directory, _SAFETENSORS)
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return []
            (size,) = struct.unpack("<Q", raw)
            if size > 100_000_000:
                return []
            try:
                header = json.loads(fh.read(size))
            except (ValueError, UnicodeDecodeError):
                return []
        return [k for k in header if k != "__metadata__"]
    path = os.path.join(directory, _BIN)
    if os.path.isfile(path):
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # unreadable here: the normal loader reports it properly
            return []
        return list(state) if isinstance(state, dict) else []
    return []


def check_not_legacy_files(config_path: str | None) -> None:
    """Raise `ConfigError` if the weights next to `config_path` use the pre-0.16 `oft_r` keys."""
    if not config_path or not os.path.isfile(config_path):
        return
    legacy = [k for k in weight_keys(os.path.dirname(config_path)) if is_legacy_key(k)]
    if legacy:
        raise ConfigError(
            f"The OFT adapter in {os.path.dirname(config_path)!r} uses the pre-v0.16 format (keys like {legacy[0]!r}): "
            f"Hugging Face PEFT 0.16 changed how OFT stores and applies its rotation, and neither PEFT >= 0.16 nor this "
            f"package can load it. Load it with peft<=0.15.2, or train a new OFT adapter."
        )
