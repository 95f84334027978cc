"""`peft inspect DIR`: what an adapter folder holds, read from its files without the method's package.

`adapter_config.json` is read as JSON and `adapter_model.safetensors` through its header (names,
dtypes and shapes; no tensor is loaded), so an adapter of a method that is not installed can be
inspected too. A folder saved with several adapters (`default` at the root, the others in
sub-folders) is reported adapter by adapter.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CliError

CONFIG_NAME = "adapter_config.json"
SAFETENSORS_NAME = "adapter_model.safetensors"
BIN_NAME = "adapter_model.bin"

# Shown first when present: the fields that say how big and how strong an adapter is.
SALIENT_FIRST = (
    "r", "lora_alpha", "alpha", "init_r", "target_r", "num_virtual_tokens", "encoder_hidden_size",
    "n_frequency", "scaling",
)
# Bookkeeping fields that are shown elsewhere or say nothing about the adapter itself.
BOOKKEEPING = {
    "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
    "peft_version", "target_modules",
}
SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
    "BOOL": "bool",
}


@dataclass
class WeightsInfo:
    file: str
    bytes: int
    tensors: int
    parameters: int
    dtypes: dict[str, int]


@dataclass
class AdapterInfo:
    name: str
    path: str
    method: str
    peft_type: str
    task_type: str | None
    base_model: str | None
    targets: Any
    settings: dict[str, Any]
    weights: WeightsInfo | None
    installed: bool
    distribution: str | None = None
    version: str | None = None
    install_hint: str | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a malformed or missing file: `peft inspect` exits 1

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{str(folder)!r} has no {CONFIG_NAME}; is it an adapter folder?") from None
    except IsADirectoryError:
        raise CliError(f"{str(path)!r} is a folder, not a file; the adapter folder is damaged") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{str(path)!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise CliError(f"{str(path)!r} nests JSON too deeply to be an adapter config") from None
    except (ValueError, OSError) as exc:  # e.g. an integer with thousands of digits
        raise CliError(f"{str(path)!r} is not a readable adapter config: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("peft_type"), str):
        raise CliError(f"{str(path)!r} has no peft_type; is it an adapter_config.json?")
    return data


def safetensors_summary(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """(name -> (dtype, shape), metadata) of a safetensors file, validated by the safetensors library
    (offsets that tile the data exactly, nothing truncated or trailing); no tensor is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {}
            for name in fh.offset_keys():
                view = fh.get_slice(name)
                tensors[name] = (view.get_dtype(), tuple(view.get_shape()))
            return tensors, dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CliError(
            f"{str(path)!r} is not a valid safetensors file ({' '.join(str(exc).split())}); it may be truncated or "
            f"corrupted: save or download the adapter again"
        ) from None


def read_weights(folder: Path, config: dict[str, Any] | None = None) -> WeightsInfo | None:
    """What the weights file holds; CliError when it is malformed or was saved with another config."""
    st = folder / SAFETENSORS_NAME
    if st.is_file():
        tensors, metadata = safetensors_summary(st)
        dtypes = Counter(SAFETENSORS_DTYPES.get(dtype, dtype.lower()) for dtype, _ in tensors.values())
        params = sum(math.prod(shape) for _, shape in tensors.values())
        _check_same_save(st, metadata, folder, config)
        return WeightsInfo(SAFETENSORS_NAME, st.stat().st_size, len(tensors), params, dict(sorted(dtypes.items())))
    legacy = folder / BIN_NAME
    if legacy.is_file():
        import torch

        try:
            state = torch.load(legacy, map_location="meta", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable pickle is a bad file, never a traceback
            raise CliError(f"cannot read {str(legacy)!r}: {' '.join(str(exc).split())}") from None
        if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
            raise CliError(f"{str(legacy)!r} is not an adapter weights file (a flat dict of name -> tensor)")
        from peft_core.config_binding import BIN_METADATA_ATTR

        _check_same_save(legacy, getattr(state, BIN_METADATA_ATTR, None), folder, config)
        dtypes = Counter(str(t.dtype).replace("torch.", "") for t in state.values())
        params = sum(t.numel() for t in state.values())
        return WeightsInfo(BIN_NAME, legacy.stat().st_size, len(state), params, dict(sorted(dtypes.items())))
    return None


def _check_same_save(weights: Path, metadata: Any, folder: Path, config: dict[str, Any] | None) -> None:
    from peft_core import PeftError
    from peft_core.config_binding import check_weights_match_config

    if config is None or not isinstance(metadata, dict):
        return
    try:
        check_weights_match_config(metadata, config, str(weights), str(folder / CONFIG_NAME))
    except PeftError as exc:
        raise CliError(" ".join(str(exc).split())) from None


def _installed(method: str) -> tuple[bool, str | None, str | None]:
    from peft_core import installed_methods

    for info in installed_methods():
        if info.name == method:
            return True, info.distribution, info.version
    return False, None, None


def _defaults(method: str) -> dict[str, Any] | None:
    """Default field values of the method's config class, when its package is installed and imports."""
    from peft_core.config_fields import field_defaults
    from peft_core.discovery import load_method

    try:
        config_cls = load_method(method).config_cls
    except Exception:
        return None
    return field_defaults(config_cls)


def _empty(value: Any) -> bool:
    """None, False, 0, "", [] or {}: what an unset option looks like when the defaults are unknown."""
    return value is None or value is False or value == "" or value == [] or value == {} or (
        isinstance(value, (int, float)) and value == 0
    )


def salient_settings(config: dict[str, Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    """The fields worth showing: the size/strength fields, then every other field that is set.

    With the method's package installed, "set" means "differs from the default"; without it, "not empty".
    """
    out = {k: config[k] for k in SALIENT_FIRST if k in config and not _empty(config[k])}
    for key in sorted(config):
        if key in out or key in BOOKKEEPING:
            continue
        value = config[key]
        if defaults is not None and key in defaults:
            if _same(value, defaults[key]):
                continue
        elif _empty(value):
            continue
        out[key] = value
    return out


def _same(value: Any, default: Any) -> bool:
    if isinstance(default, (set, frozenset)):
        default = sorted(default)
    if isinstance(value, list) and isinstance(default, (list, tuple)):
        return sorted(map(str, value)) == sorted(map(str, default))
    return value == default


def inspect_folder(folder: Path, name: str = "default") -> AdapterInfo:
    from peft_core.discovery import install_hint

    config = read_config(folder)
    peft_type = config["peft_type"]
    targets = config.get("target_modules")
    if not isinstance(targets, (str, list, type(None))):
        raise CliError(f"{str(folder / CONFIG_NAME)!r}: target_modules must be a string or a list, got {targets!r}")
    method = peft_type.lower()
    installed, dist, version = _installed(method)
    defaults = _defaults(method) if installed else None
    if isinstance(targets, list):
        targets = sorted(targets, key=str)
    info = AdapterInfo(
        name=name,
        path=str(folder),
        method=method,
        peft_type=peft_type,
        task_type=config.get("task_type"),
        base_model=config.get("base_model_name_or_path"),
        targets=targets,
        settings=salient_settings(config, defaults),
        weights=None,
        installed=installed,
        distribution=dist,
        version=version,
        install_hint=None if installed else install_hint(method),
    )
    try:
        info.weights = read_weights(folder, config)
    except CliError as exc:
        info.errors.append(str(exc))
    if info.weights is None and not info.errors:
        info.notes.append(f"no {SAFETENSORS_NAME} or {BIN_NAME}: the adapter was not saved completely")
    if installed and defaults is None:
        info.notes.append(f"{dist} is installed but does not import; run `peft methods` for the error")
    return info


def inspect_adapter(path: str | Path) -> list[AdapterInfo]:
    """One AdapterInfo per adapter in `path` (the root's is `default`, sub-folders are named adapters)."""
    folder = Path(path)
    if not folder.exists():
        raise CliError(f"{str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CliError(f"{str(folder)!r} is not a folder; give the adapter folder (the one holding {CONFIG_NAME})")
    found: list[AdapterInfo] = []
    if (folder / CONFIG_NAME).is_file():
        found.append(inspect_folder(folder))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / CONFIG_NAME).is_file()):
        found.append(inspect_folder(sub, name=sub.name))
    if not found:
        raise CliError(f"{str(folder)!r} has no {CONFIG_NAME} (nor sub-folders with one); is it an adapter folder?")
    return found


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_adapters(adapters: list[AdapterInfo]) -> str:
    blocks = []
    for a in adapters:
        if a.installed:
            package = f"installed: {a.distribution} {a.version}"
        else:
            package = f"NOT installed: {a.install_hint}"
        targets = ", ".join(a.targets) if isinstance(a.targets, list) else (_fmt_value(a.targets) if a.targets is not None else "-")
        settings = ", ".join(f"{k}={_fmt_value(v)}" for k, v in a.settings.items()) or "-"
        if a.weights is not None:
            w = a.weights
            dtypes = ", ".join(f"{d} ({n})" for d, n in w.dtypes.items())
            weights = (
                f"{w.file}, {_fmt_bytes(w.bytes)}, {w.tensors} tensors, {w.parameters:,} parameters, dtypes {dtypes}"
            )
        else:
            weights = "missing"
        lines = [
            f"adapter     {a.name}  ({a.path})",
            f"method      {a.method} (peft_type {a.peft_type}); {package}",
            f"task        {a.task_type or '-'}",
            f"base model  {a.base_model or '-'}",
            f"targets     {targets}",
            f"settings    {settings}",
            f"weights     {weights}",
        ]
        lines += [f"note        {n}" for n in a.notes]
        lines += [f"ERROR       {e}" for e in a.errors]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
