"""Let `importlib.metadata` find the distribution that provides the `peft` import.

transformers (`check_peft_version`: `importlib.metadata.version("peft")`) and accelerate
(`is_peft_available`: `importlib.metadata.metadata("peft")`) look `peft` up by distribution name. This
finder answers that name with peft-compat's own, unchanged metadata (its `Name` stays `peft-compat`,
its version is the Hugging Face PEFT API level it provides), so they see what is installed without any
distribution pretending to be Hugging Face's. `packages_distributions()` already maps `peft` to
peft-compat from the wheel's RECORD; this finder never lists anything (no duplicates there).
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from typing import Iterator

from ._guard import COMPAT_DIST


class PeftImportDistributionFinder(importlib.metadata.DistributionFinder):
    """Answers `distribution("peft")` with the peft-compat distribution; nothing else."""

    def find_spec(self, *args: object, **kwargs: object) -> None:
        return None  # a metadata finder only: it never imports anything

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context = importlib.metadata.DistributionFinder.Context()
    ) -> Iterator[importlib.metadata.Distribution]:
        name = getattr(context, "name", None)
        if not name or re.sub(r"[-_.]+", "-", name).lower() != "peft":
            return iter(())
        try:
            return iter([importlib.metadata.distribution(COMPAT_DIST)])
        except importlib.metadata.PackageNotFoundError:  # running from a source tree
            return iter(())


def install_distribution_alias() -> None:
    """Append the finder to `sys.meta_path` once (after the standard finders, which keep precedence)."""
    if not any(isinstance(f, PeftImportDistributionFinder) for f in sys.meta_path):
        sys.meta_path.append(PeftImportDistributionFinder())


def compat_version(default: str) -> str:
    try:
        return importlib.metadata.version(COMPAT_DIST)
    except importlib.metadata.PackageNotFoundError:
        return default
