"""Smoke cases for `peft_core.testing.smoke_test` (tools/release.py runs them on the installed wheel).

Declared through the `peft.smoke_cases` entry point: each dict holds smoke_test keyword arguments
(optional `id`; `requires`: what a case needs beyond the package's dependencies).
"""

from __future__ import annotations

from typing import Any


def cases() -> list[dict[str, Any]]:
    # the default r=64 exceeds the TinyMLP's 16 features
    return [{"id": "r4", "r": 4}]
