"""Find an adapter file in a local folder or, failing that, a Hugging Face Hub repo."""

from __future__ import annotations

import os
from typing import Any

from .errors import AdapterNotFoundError


def resolve_adapter_file(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    subfolder: str | None = None,
    revision: str | None = None,
    **hub_kwargs: Any,
) -> str | None:
    """Local path of `filename`, downloading it from the Hub if needed; None if the repo lacks it.

    A local folder always wins. A string that is neither an existing folder nor a valid Hub repo id
    raises `AdapterNotFoundError`.
    """
    base = os.fspath(path_or_repo_id)
    local_dir = os.path.join(base, subfolder) if subfolder else base
    if os.path.isdir(local_dir):
        candidate = os.path.join(local_dir, filename)
        if os.path.isdir(candidate):
            raise AdapterNotFoundError(f"{candidate!r} is a folder, not a file; the adapter folder is damaged.")
        return candidate if os.path.isfile(candidate) else None
    if os.path.isfile(local_dir):
        raise AdapterNotFoundError(
            f"{local_dir!r} is a file, not an adapter folder. Pass the folder that holds {filename} and the weights "
            f"(here probably {os.path.dirname(os.path.abspath(local_dir))!r})."
        )
    if os.path.exists(base) or not _looks_like_repo_id(base):
        raise AdapterNotFoundError(
            f"Adapter folder {local_dir!r} does not exist. Pass the folder that save_pretrained wrote, "
            f"or a Hugging Face Hub repo id such as 'user/my-adapter'."
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    try:
        return hf_hub_download(base, filename, subfolder=subfolder, revision=revision, **hub_kwargs)
    except EntryNotFoundError:
        return None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise AdapterNotFoundError(
            f"{base!r} is not a local folder and {filename} could not be fetched from the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}). Check the path, the repo id, or your network/HF_TOKEN."
        ) from exc


def _looks_like_repo_id(value: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if value.startswith((".", "/", "~")) or os.sep in value.replace("/", "", 1):
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True
