"""Check 3: registration conflicts, with every workspace package installed together.

- entry points in each pyproject == installed metadata == what the package's `__init__` registers
  (each package and each entry point imported alone in a fresh interpreter);
- every method registered exactly once, names unique, a shared prefix only where declared;
- the registry is the same whatever order the packages are imported in (fresh interpreter per order)
  and equals what `load_all_methods()` builds;
- for every method: on a model whose module names carry every installed method's prefix plus decoys
  (`lora_proj`, `vblora_x`, `boft_y`, ...), the saved state dict holds exactly the method's adapter
  tensors, and loading it into a fresh model reproduces the outputs.
"""

from __future__ import annotations


import pytest

import _workspace_checks as wc

WS = wc.discover_workspace(wc.REPO_ROOT)
METHODS = [(p.dist, name) for p in WS.method_packages for name in sorted(p.entry_points)]


def test_registration_is_consistent(workspace_report):
    problems = wc.problems_of(workspace_report, "registration")
    assert not problems, wc.format_problems(problems)


@pytest.mark.parametrize(("dist", "method"), METHODS, ids=[m for _, m in METHODS])
def test_state_dict_holds_exactly_the_methods_adapter(workspace_report, dist, method):
    problems = [p for p in wc.problems_of(workspace_report, "state_dicts", dist) if f"method {method!r}" in p.where]
    skips = [p for p in problems if p.kind == "state-dict-skip"]
    if skips and len(skips) == len(problems):
        pytest.skip(str(skips[0]))
    assert not problems, wc.format_problems(problems)
