"""Legacy Bone adapters: Hugging Face PEFT's predecessor of MiSS (`peft_type: "BONE"`, removed in PEFT 0.19).

Bone's math is MiSS's (balanced variant, or `"bat"`), with the parameter called `bone_block` instead of
`miss_block`. Neither Hugging Face PEFT >= 0.19 nor peft-core can load a `"BONE"` adapter directly;
`convert_bone_adapter` rewrites one as an equivalent MiSS adapter that both load.
"""

from __future__ import annotations

import json
import os
import shutil

from peft_core import ConfigError
from peft_core.serialization import (
    CONFIG_NAME,
    SAFETENSORS_WEIGHTS_NAME,
    WEIGHTS_NAME,
    atomic_write_text,
    read_weights_file,
    save_weights,
)


def convert_bone_key(key: str) -> str:
    """`...q_proj.bone_block` -> `...q_proj.miss_block` (only a whole `bone_block` key component is renamed)."""
    return ".".join("miss_block" if part == "bone_block" else part for part in key.split("."))


def convert_bone_config(data: dict) -> dict:
    """A Bone `adapter_config.json` dict as the equivalent MiSS config dict."""
    if str(data.get("peft_type", "")).upper() != "BONE":
        raise ConfigError(f"Not a Bone adapter config: peft_type is {data.get('peft_type')!r}, expected 'BONE'.")
    out = dict(data)
    out["peft_type"] = "MISS"
    out.setdefault("mini_r", 1)
    out.setdefault("miss_dropout", 0.0)
    if out.get("init_weights") not in (True, False, "bat"):
        raise ConfigError(f"Unknown Bone init_weights {out.get('init_weights')!r}; Bone knew True, False and 'bat'.")
    return out


def convert_bone_adapter(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> None:
    """Write the Bone adapter in `src_dir` as a MiSS adapter in `dst_dir` (config, weights, README).

    The weights are written as `adapter_model.safetensors` whatever the source format. Outputs are unchanged:
    a Bone adapter computes exactly what the MiSS adapter with the same block computes.
    """
    src, dst = os.fspath(src_dir), os.fspath(dst_dir)
    config_path = os.path.join(src, CONFIG_NAME)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No {CONFIG_NAME} in {src!r}; point to the folder holding the Bone adapter.")
    with open(config_path, encoding="utf-8") as fh:
        config = convert_bone_config(json.load(fh))
    for name in (SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME):
        weights_path = os.path.join(src, name)
        if os.path.isfile(weights_path):
            break
    else:
        raise FileNotFoundError(f"No {SAFETENSORS_WEIGHTS_NAME} or {WEIGHTS_NAME} in {src!r}.")
    state = {convert_bone_key(k): v for k, v in read_weights_file(weights_path).items()}
    os.makedirs(dst, exist_ok=True)
    save_weights(state, dst, safe_serialization=True)
    atomic_write_text(os.path.join(dst, CONFIG_NAME), json.dumps(config, indent=2, sort_keys=True))
    readme = os.path.join(src, "README.md")
    if os.path.isfile(readme) and os.path.abspath(src) != os.path.abspath(dst):
        shutil.copyfile(readme, os.path.join(dst, "README.md"))
