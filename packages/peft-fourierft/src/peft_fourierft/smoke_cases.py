"""Smoke cases for `peft_core.testing.smoke_test` (tools/release.py runs them on the installed wheel).

Declared through the `peft.smoke_cases` entry point: each dict holds smoke_test keyword arguments
(optional `id`; `requires`: what a case needs beyond the package's dependencies).
"""

from __future__ import annotations

from typing import Any


def cases() -> list[dict[str, Any]]:
    # the default n_frequency=1000 exceeds the 256 entries of a 16x16 layer
    return [{"id": "20-frequencies", "n_frequency": 20}]
