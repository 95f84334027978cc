"""Tie a weights file to the config it was saved with, so a mixed adapter folder is refused.

`save_pretrained` renames the weights file and `adapter_config.json` into place one after the
other. A process killed between the two renames (or two processes saving into one folder) can
leave new weights next to an old config; with an unchanged rank such a folder would load without
any error and compute with the wrong scale. So the weights file records the config's fields in its
metadata (safetensors header metadata; a `peft_metadata` attribute of the `.bin` dict, which
`torch.load(weights_only=True)` keeps), and loading compares them with the config it read.

Readers that don't know the key (Hugging Face PEFT, safetensors tools) ignore it. Fields that say
nothing about the weights (base model path, revision, inference_mode, version, auto_mapping) are
left out, so editing them by hand keeps the folder loadable. Files without the key (written by
Hugging Face PEFT or older versions) are not checked.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable, Mapping

from .errors import InconsistentAdapterError

CONFIG_METADATA_KEY = "peft_core.adapter_config"
BIN_METADATA_ATTR = "peft_metadata"
# Fields that describe where the adapter came from or how it was last used, not what the weights mean.
INFORMATIONAL_FIELDS = frozenset(
    {"base_model_name_or_path", "revision", "inference_mode", "peft_version", "auto_mapping"}
)


def bound_fields(config_data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a config's JSON form that a weights file is tied to."""
    return {k: v for k, v in config_data.items() if k not in INFORMATIONAL_FIELDS}


def config_metadata(config_data: Mapping[str, Any]) -> dict[str, str]:
    """The metadata entry recording `config_data` (the dict written to adapter_config.json)."""
    return {CONFIG_METADATA_KEY: json.dumps(bound_fields(config_data), sort_keys=True, separators=(",", ":"))}


def check_weights_match_config(
    metadata: Mapping[str, str] | None,
    config_data: Mapping[str, Any] | None,
    weights_path: str,
    config_path: str | None,
    known_fields: Iterable[str] | None = None,
) -> None:
    """Raise `InconsistentAdapterError` when the weights were saved with another config than the one read.

    `config_data` is the JSON object read from the config file (None: the caller passed a config
    object of its own, which is then trusted as is). Only `known_fields` (the config class's
    fields; default: all) are compared: others are dropped on load and change nothing.
    """
    if not metadata or config_data is None or CONFIG_METADATA_KEY not in metadata:
        return
    folder = os.path.dirname(os.path.abspath(weights_path))
    try:
        recorded = json.loads(metadata[CONFIG_METADATA_KEY])
    except (ValueError, RecursionError):
        recorded = None
    if not isinstance(recorded, dict):
        raise InconsistentAdapterError(
            f"{weights_path}: the config recorded in the weights file's metadata ({CONFIG_METADATA_KEY}) is not "
            f"readable; the file is damaged. Save the adapter in {folder!r} again."
        )
    current = bound_fields(config_data)
    if known_fields is not None:
        known = set(known_fields)
        recorded = {k: v for k, v in recorded.items() if k in known}
        current = {k: v for k, v in current.items() if k in known}
    differing = sorted(k for k in set(recorded) | set(current) if not _same(recorded.get(k, _ABSENT), current.get(k, _ABSENT)))
    if not differing:
        return
    shown = "; ".join(
        f"{k}: {_show(recorded.get(k, _ABSENT))} when the weights were saved, {_show(current.get(k, _ABSENT))} now"
        for k in differing[:6]
    )
    more = f" (and {len(differing) - 6} more)" if len(differing) > 6 else ""
    raise InconsistentAdapterError(
        f"The adapter in {folder!r} is a mix of two saves: {os.path.basename(weights_path)} was saved with another "
        f"{os.path.basename(config_path or 'adapter_config.json')} ({shown}{more}). A save into this folder was "
        f"interrupted, another process saved into it at the same time, or the files were copied from different "
        f"saves. Save the adapter again. If you edited the config on purpose, load it with "
        f"config=PeftConfig.from_pretrained({folder!r}) to use it as it is."
    )


_ABSENT = object()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
