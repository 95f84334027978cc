"""Let `importlib.metadata` find the distribution that provides the `peft` import (peft-compat).

transformers (`check_peft_version`: `importlib.metadata.version("peft")`) and accelerate
(`is_peft_available`: `importlib.metadata.metadata("peft")`) look `peft` up by distribution name, often
before `import peft`. This finder answers that one name with peft-compat's own, unchanged metadata (its
`Name` stays `peft-compat`; its version is the Hugging Face PEFT API level it provides), so those checks
see what is installed without any distribution pretending to be Hugging Face's. It never lists anything
(no duplicates in `distributions()`); `packages_distributions()` maps `peft` to peft-compat from the
wheel's RECORD already.

`peft_compat.pth` installs it at interpreter start-up; it imports only `sys` until a lookup happens.
"""

from __future__ import annotations

import sys

COMPAT_DIST = "peft-compat"


def _is_peft(name: str) -> bool:
    import re

    return re.sub(r"[-_.]+", "-", name).lower() == "peft"


class PeftImportDistributionFinder:
    """A metadata-only finder: `find_distributions(name="peft")` gives the peft-compat distribution."""

    @staticmethod
    def find_spec(*args: object, **kwargs: object) -> None:
        return None  # never imports anything

    @staticmethod
    def find_distributions(context: object = None):
        name = getattr(context, "name", None)
        if not name or not _is_peft(name):
            return iter(())
        import importlib.metadata

        try:
            return iter([importlib.metadata.distribution(COMPAT_DIST)])
        except importlib.metadata.PackageNotFoundError:  # a source tree without metadata
            return iter(())


def install() -> None:
    """Append the finder to `sys.meta_path` once (after the standard finders, which keep precedence)."""
    if not any(type(f).__name__ == PeftImportDistributionFinder.__name__ for f in sys.meta_path):
        sys.meta_path.append(PeftImportDistributionFinder())
