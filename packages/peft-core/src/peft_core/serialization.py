"""Reading and writing adapter files: atomic writes, safetensors / legacy .bin weights, model card.

Writes go to a temporary file in the target folder and are renamed into place, so a crash or a
full disk part-way leaves the previous adapter readable.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, Callable, Mapping

import torch

from .errors import AdapterLoadError

CONFIG_NAME = "adapter_config.json"
SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors"
WEIGHTS_NAME = "adapter_model.bin"
SAFETENSORS_METADATA = {"format": "pt"}


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, then atomically rename the temp file onto `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write)


def _detach_for_saving(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous, non-aliasing CPU tensors, as safetensors requires."""
    out: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, tensor in state_dict.items():
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


def save_weights(state_dict: Mapping[str, torch.Tensor], directory: str, safe_serialization: bool = True) -> str:
    """Write the adapter weights file; returns its path."""
    tensors = _detach_for_saving(state_dict)
    if safe_serialization:
        from safetensors.torch import save_file

        path = os.path.join(directory, SAFETENSORS_WEIGHTS_NAME)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=dict(SAFETENSORS_METADATA)))
    else:
        path = os.path.join(directory, WEIGHTS_NAME)
        atomic_write(path, lambda tmp: torch.save(tensors, tmp))
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


def write_model_card(directory: str, *, base_model: str | None, tags: list[str], pipeline_tag: str | None) -> None:
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
    atomic_write_text(path, "\n".join(lines))


def describe_tensors(state_dict: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state_dict.items())[:5])
