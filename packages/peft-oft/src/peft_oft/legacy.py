"""Recognise OFT adapters in the formats Hugging Face PEFT dropped, so they are refused with a reason.

PEFT <= 0.15 stored OFT as `oft_r` (and `oft_s`) tensors; PEFT 0.16 replaced them by `oft_R.weight`
(packed skew-symmetric blocks), and HF refuses the old keys. The check runs while the config is read
(`OFTConfig.from_dict`), so reading such a config fails before any model is built: it peeks at the
weights file next to the config (`peft_core.saved_tensors`: the safetensors header only, no tensor data).
"""

from __future__ import annotations

import os

from peft_core import ConfigError
from peft_core.saved_tensors import saved_tensor_shapes


def is_legacy_key(key: str) -> bool:
    """A key holding a pre-0.16 OFT tensor (`...q_proj.oft_r` / `...oft_r.<adapter>`)."""
    parts = key.split(".")
    return "oft_r" in parts or "oft_s" in parts


def check_not_legacy_files(config_path: str | None) -> None:
    """Raise `ConfigError` if the weights next to `config_path` use the pre-0.16 `oft_r` keys."""
    if not config_path or not os.path.isfile(config_path):
        return
    legacy = [k for k in saved_tensor_shapes(os.path.dirname(config_path)) if is_legacy_key(k)]
    if legacy:
        raise ConfigError(
            f"The OFT adapter in {os.path.dirname(config_path)!r} uses the pre-v0.16 format (keys like {legacy[0]!r}): "
            f"Hugging Face PEFT 0.16 changed how OFT stores and applies its rotation, and neither PEFT >= 0.16 nor this "
            f"package can load it. Load it with peft<=0.15.2, or train a new OFT adapter."
        )
