"""Smoke cases for `peft_core.testing.smoke_test` (tools/release.py runs them on the installed wheel).

Declared through the `peft.smoke_cases` entry point: each dict holds smoke_test keyword arguments
(optional `id`; `requires`: what a case needs beyond the package's dependencies).
"""

from __future__ import annotations

from typing import Any


def cases() -> list[dict[str, Any]]:
    # the default ranks (init_r=12) exceed the 16-feature TinyMLP; AdaLoRA needs its schedule length
    return [{"id": "small-rank", "total_step": 10, "init_r": 4}]
