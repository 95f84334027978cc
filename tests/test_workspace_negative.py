"""Check 4: negative proofs. Small broken workspaces, written to a temp folder, must be caught.

Each scenario (tests/_workspace_scenarios.py) writes a throwaway uv workspace with one fault, makes
its packages importable and "installed" (PYTHONPATH plus a fake `<name>-0.1.0.dist-info/` with
METADATA and entry_points.txt), and runs the same check functions as the real suite in a fresh
interpreter. A test asserts that the fault is reported with its kind, the package, the file and a
fix, and that nothing else is reported, so the checks are neither blind nor noisy. A clean
multi-package workspace (a deliberately shared prefix, peft-core's `toy` method, a tool package)
is the control: it must produce no problem at all.
"""

from __future__ import annotations

import zipfile

import _workspace_checks as wc

def kinds(problems: list[wc.Problem]) -> set[str]:
    return {p.kind for p in problems}


def only(problems: list[wc.Problem], *allowed: str) -> None:
    """Every problem is one of the `allowed` kinds (the fault, and its direct consequences)."""
    stray = [p for p in problems if p.kind not in allowed]
    assert not stray, "unexpected extra problems:\n" + wc.format_problems(stray)


def explained(problem: wc.Problem, *needles: str) -> None:
    """The message says what, where and how to fix, naming the given things."""
    text = str(problem)
    assert problem.what and problem.fix and problem.where, text
    for needle in needles:
        assert needle in text, f"{needle!r} missing from:\n{text}"


def test_clean_workspace_has_no_problems(negative_reports):
    """The control: correct packages, incl. a declared shared prefix, peft-core's `toy` and a tool package."""
    fake, problems = negative_reports["clean"]
    assert not problems, wc.format_problems(problems)
    assert len(wc.discover_workspace(fake.root).packages) >= 4


def test_import_cycle_is_caught(negative_reports):
    _, problems = negative_reports["import_cycle"]
    assert kinds(problems) == {"import-cycle", "import-order"}, wc.format_problems(problems)
    (cycle,) = [p for p in problems if p.kind == "import-cycle"]
    explained(cycle, "peft-cyc", "peft_cyc.alpha", "peft_cyc.beta", "src/peft_cyc/alpha.py:1", "src/peft_cyc/beta.py:1")
    (order,) = [p for p in problems if p.kind == "import-order"]
    # only one order bites: beta first; the sorted order (alpha first) imports fine
    explained(order, "peft_cyc.beta first", "partially initialized")
    assert "peft_cyc.alpha first" not in order.what


def test_cycle_through_the_package_init_is_caught(negative_reports):
    _, problems = negative_reports["init_cycle"]
    assert kinds(problems) == {"import-cycle", "import-order"}, wc.format_problems(problems)
    (cycle,) = [p for p in problems if p.kind == "import-cycle"]
    explained(cycle, "peft_init.model", "src/peft_init/model.py:1: from peft_init import Config",
              "src/peft_init/__init__.py:1: from .model import Model")
    (order,) = [p for p in problems if p.kind == "import-order"]  # one problem, every order listed
    explained(order, "peft_init first", "peft_init.config first", "peft_init.model first", "cannot import name 'Config'")


def test_undeclared_third_party_import_is_caught(negative_reports):
    _, problems = negative_reports["undeclared_import"]
    only(problems, "deptry-DEP001", "deptry-DEP003")
    (problem,) = problems
    explained(problem, "peft-undecl", "tqdm", "packages/peft-undecl/src/peft_undecl/__init__.py:1", "[project].dependencies")


def test_undeclared_method_package_import_is_caught(negative_reports):
    _, problems = negative_reports["undeclared_method_import"]
    only(problems, "undeclared-workspace-import")
    (problem,) = problems
    assert problem.package == "peft-beta"
    explained(problem, "peft_alpha", "packages/peft-beta/src/peft_beta/helpers.py:2", "peft-alpha>=0.1,<0.2",
              "{ workspace = true }")


def test_duplicate_name_is_caught(negative_reports):
    _, problems = negative_reports["duplicate_name"]
    assert "duplicate-name" in kinds(problems), wc.format_problems(problems)
    # importing both together fails too; nothing else is reported
    only(problems, "duplicate-name", "order-import-error", "load-all-mismatch")
    (problem,) = [p for p in problems if p.kind == "duplicate-name"]
    explained(problem, "'same'", "peft-one", "peft-two", "packages/peft-one/src/peft_one/__init__.py")


def test_undeclared_shared_prefix_is_caught(negative_reports):
    _, problems = negative_reports["undeclared_shared_prefix"]
    assert "undeclared-shared-prefix" in kinds(problems), wc.format_problems(problems)
    only(problems, "undeclared-shared-prefix", "order-import-error", "load-all-mismatch")
    (problem,) = [p for p in problems if p.kind == "undeclared-shared-prefix"]
    explained(problem, "'alpha_'", "peft-alpha", "peft-gamma", "shares_prefix_with='alpha'",
              "packages/peft-gamma/src/peft_gamma/__init__.py")


def test_entry_point_that_registers_nothing_is_caught(negative_reports):
    _, problems = negative_reports["registers_nothing"]
    assert "entry-point-registers-nothing" in kinds(problems), wc.format_problems(problems)
    only(problems, "entry-point-registers-nothing", "load-all-mismatch")
    (problem,) = [p for p in problems if p.kind == "entry-point-registers-nothing"]
    explained(problem, "peft-empty", "packages/peft-empty/pyproject.toml", 'empty = "peft_empty"',
              "register_peft_method(name='empty'")


def test_entry_point_that_registers_something_else_is_caught(negative_reports):
    _, problems = negative_reports["registers_other"]
    assert "entry-point-registers-other" in kinds(problems), wc.format_problems(problems)
    only(problems, "entry-point-registers-other", "missing-entry-point", "load-all-mismatch")
    (problem,) = [p for p in problems if p.kind == "entry-point-registers-other"]
    explained(problem, "peft-other", "'different'", "packages/peft-other/pyproject.toml")
    # and the method it does register can't be discovered
    (missing,) = [p for p in problems if p.kind == "missing-entry-point"]
    explained(missing, "'different'", 'different = "peft_other"', "packages/peft-other/src/peft_other/__init__.py")


def test_stale_installed_entry_points_are_caught(negative_reports):
    _, problems = negative_reports["stale_entry_points"]
    assert "entry-points-stale" in kinds(problems), wc.format_problems(problems)
    (problem,) = [p for p in problems if p.kind == "entry-points-stale"]
    explained(problem, "alpha_old", "uv sync")


def test_method_registered_twice_is_caught(negative_reports):
    _, problems = negative_reports["registered_twice"]
    only(problems, "registered-twice")
    explained(problems[0], "'twice'", "2 times", "packages/peft-twice/src/peft_twice/again.py:4")


def test_member_dependency_cycle_is_caught(negative_reports):
    _, problems = negative_reports["dependency_cycle"]
    only(problems, "dependency-cycle")
    (problem,) = problems
    explained(problem, "peft-alpha -> peft-beta -> peft-alpha", "packages/peft-alpha/pyproject.toml")


def test_core_importing_a_method_package_is_caught(negative_reports):
    _, problems = negative_reports["core_imports_method"]
    only(problems, "core-imports-method")
    (problem,) = problems
    explained(problem, "peft-alpha", "packages/peft-core/src/peft_core/discovery.py:2", "entry points")


def test_state_dict_that_selects_by_prefix_string_is_caught(negative_reports):
    _, problems = negative_reports["leaky_state_dict"]
    only(problems, "state-dict")
    (problem,) = problems
    explained(problem, "boft_y", "oft_z", "not targeted")


# -- hygiene: static, no subprocess needed ----------------------------------------------------------


def test_hygiene_faults_are_caught(tmp_path):
    fake = wc.FakeWorkspace(tmp_path)
    fake.add(
        "peft-messy",
        {"__init__.py": wc.method_source("messy")},
        entry_points={"messy": "peft_messy"},
        dependencies=["peft-core"],
        dev=[],
        pyproject_extra="\n[tool.pytest.ini_options]\naddopts = \"-q\"\n",
        changelog="# Changelog\n\n## 0.1.0\n",
        py_typed=False,
        tests={"__init__.py": "", "test_x.py": "def test_x():\n    pass\n"},
    )
    fake.add("peft-nameless", {"__init__.py": wc.method_source("nameless")}, dependencies=["torch>=2"])
    problems = wc.check_package_files(wc.discover_workspace(tmp_path))
    by_pkg = {d: kinds([p for p in problems if p.package == d]) for d in ("peft-messy", "peft-nameless")}
    assert by_pkg["peft-messy"] == {
        "unbounded-member-dependency",
        "member-pytest-config",
        "changelog-unreleased",
        "no-py-typed",
        "tests-init",
        "no-dev-pytest",
    }, wc.format_problems(problems)
    assert by_pkg["peft-nameless"] == {"no-core-dependency"}, wc.format_problems(problems)
    for problem in problems:
        explained(problem, problem.package)


def test_wheel_with_stray_files_is_caught(tmp_path):
    fake = wc.FakeWorkspace(tmp_path / "ws")
    pkg_path = fake.add("peft-alpha", {"__init__.py": ""}, entry_points={"alpha": "peft_alpha"})
    pkg = next(p for p in wc.discover_workspace(fake.root).packages if p.path == pkg_path.resolve())
    wheel = tmp_path / "peft_alpha-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("peft_alpha/__init__.py", "")
        zf.writestr("tests/test_alpha.py", "")  # a stray top-level package
        zf.writestr("peft_alpha-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: peft-alpha\nVersion: 0.1.0\n"
                    "Requires-Dist: peft-core\n")
        zf.writestr("peft_alpha-0.1.0.dist-info/entry_points.txt", "[peft.methods]\nalpha = peft_alpha\n")
    problems = wc.check_wheel(pkg, wheel)
    assert kinds(problems) == {"wheel-strays", "wheel-no-py-typed", "wheel-unbounded-core"}, wc.format_problems(problems)
    explained(next(p for p in problems if p.kind == "wheel-strays"), "['tests']", "packages = [\"src/peft_alpha\"]")
