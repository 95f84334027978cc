"""The Hugging Face Hub: find an adapter file locally or in a Hub repo, and upload adapters (never base models)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, TypedDict, Unpack

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


class HubCommitOptions(TypedDict, total=False):
    """How `push_to_hub` commits (huggingface_hub's arguments), the same for adapters and configs."""

    commit_message: str | None
    commit_description: str | None
    private: bool | None
    token: bool | str | None
    revision: str | None
    create_pr: bool


def push_to_hub(write: Callable[[str], None], repo_id: str, *, what: str, **options: Unpack[HubCommitOptions]) -> Any:
    """Create `repo_id` if needed and upload, in one commit, the files `write(folder)` puts in a temporary folder.

    Only those files are uploaded: an adapter's push never falls through to the base model's own
    `push_to_hub` (which would upload the whole base model). Returns huggingface_hub's `CommitInfo`.
    """
    from huggingface_hub import HfApi

    unknown = sorted(set(options) - set(HubCommitOptions.__annotations__))
    if unknown:
        raise TypeError(f"push_to_hub() got unexpected keyword arguments {unknown}")
    revision, create_pr = options.get("revision"), options.get("create_pr", False)
    api = HfApi(token=options.get("token"))
    repo_id = api.create_repo(repo_id, private=options.get("private"), exist_ok=True, repo_type="model").repo_id
    if revision is not None and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="peft-push-") as folder:
        write(folder)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=options.get("commit_message") or f"Upload {what}",
            commit_description=options.get("commit_description"),
            revision=revision,
            create_pr=create_pr,
            repo_type="model",
        )
