"""Refuse to run beside Hugging Face's own `peft` distribution: both install the `peft` import package,
so one would silently overwrite the other's files."""

from __future__ import annotations

import importlib.metadata
import re

COMPAT_DIST = "peft-compat"


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def hf_peft_distribution() -> importlib.metadata.Distribution | None:
    """Hugging Face's `peft` distribution if it is installed (found through the standard path finders only)."""
    for dist in importlib.metadata.MetadataPathFinder.find_distributions(
        importlib.metadata.DistributionFinder.Context(name="peft")
    ):
        if _normalised(dist.metadata["Name"] or "") == "peft":
            return dist
    return None


def refuse_if_hf_peft_installed() -> None:
    dist = hf_peft_distribution()
    if dist is None:
        return
    raise ImportError(
        f"Hugging Face's `peft` {dist.version} is installed in this environment together with {COMPAT_DIST}; both "
        f"provide the `peft` import, so the files of one overwrote the other's. Use one of them: "
        f"`pip uninstall peft peft-compat && pip install peft-compat` to keep peft-compat (plus the method "
        f"packages you need, e.g. peft-lora), or `pip uninstall peft-compat` to keep Hugging Face PEFT."
    )
