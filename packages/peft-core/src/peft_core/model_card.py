"""`README.md` model cards of saved adapters: created when missing, their Hub metadata updated otherwise."""

from __future__ import annotations

import os
from typing import Sequence

from .serialization import write_model_card


def create_or_update_model_card(
    directory: str | os.PathLike,
    *,
    base_model: str | None,
    tags: Sequence[str],
    pipeline_tag: str | None,
) -> None:
    """Make `directory/README.md` say what the Hub needs to list the adapter (`library_name: peft`, its base
    model, tags); text the user wrote in an existing card is kept, only its metadata is merged."""
    from huggingface_hub import ModelCard

    from .core_version import core_version as _core_version

    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "README.md")
    if not os.path.exists(path):
        write_model_card(directory, base_model=base_model, tags=list(tags), pipeline_tag=pipeline_tag)
    card = ModelCard.load(path)
    data = card.data
    data.library_name = "peft"
    if base_model and not getattr(data, "base_model", None):
        data.base_model = base_model
    if pipeline_tag and not getattr(data, "pipeline_tag", None):
        data.pipeline_tag = pipeline_tag
    data.tags = sorted(set(data.tags or []) | set(tags)) or None
    version_line = f"- peft-core {_core_version()}"
    if version_line not in card.text:
        card.text = card.text.rstrip("\n") + "\n\n### Framework versions\n\n" + version_line + "\n"
    card.save(path)
