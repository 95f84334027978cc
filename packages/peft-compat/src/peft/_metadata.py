"""The distribution metadata side of being `peft`: see `_peft_compat_metadata` (installed at start-up by
`peft_compat.pth`; installed again here for environments that skip .pth files, e.g. `python -S`)."""

from __future__ import annotations

import importlib.metadata

from _peft_compat_metadata import COMPAT_DIST, install

install_distribution_alias = install


def compat_version(default: str) -> str:
    try:
        return importlib.metadata.version(COMPAT_DIST)
    except importlib.metadata.PackageNotFoundError:
        return default
