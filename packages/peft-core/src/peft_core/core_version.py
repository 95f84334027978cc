"""The installed peft-core's release number, read from its metadata (a leaf module: config, the registry and
serialization all need it, and none of them should import another for it)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def core_version() -> str:
    """`importlib.metadata.version("peft-core")`, or "unknown" when running from a source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("peft-core")
    except PackageNotFoundError:
        return "unknown"
