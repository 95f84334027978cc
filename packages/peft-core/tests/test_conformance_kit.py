"""The conformance kit (peft_core.testing) on the toy method: it passes the correct method, and each
deliberately broken variant (tests/_support/peft_toy/mutants.py) fails exactly the checks that
should catch it (mutation testing of the kit itself)."""

from __future__ import annotations

import dataclasses
import os
import sys
import types

import pytest

import peft_core
from peft_core.testing import CHECKS, Case, Conformance, models, run_conformance
from peft_core.testing.pytest_suite import ConformanceTests

SUPPORT = os.path.join(os.path.dirname(__file__), "_support")
# A .dist-info giving the toy `peft.methods` / `peft.conformance` entry points; only the fresh
# interpreter of the kit gets it (this process would otherwise list the toy as installed).
TOY_INSTALL = os.path.join(SUPPORT, "toy_install")
TOY_SUITE = "peft_toy.conformance:conformance"


class TestToyConformance(ConformanceTests):
    """The whole kit, every check and case, on the correct toy method (as a package's tests run it)."""

    method = "toy"
    suite = TOY_SUITE
    extra_paths = (TOY_INSTALL,)


# mutant -> the checks that must fail (and no others), on the toy's MLP case
EXPECTED_FAILURES = {
    "forward_ignores_adapter": {"changes_output", "init", "train_step", "adapters", "merge", "merge_and_unload"},
    "forward_ignores_disable": {"disable_adapter", "mixed_batch"},  # mixed batches' base rows use disable too
    "wrong_merge": {"merge", "merge_and_unload"},
    "missing_merge": {"merge", "unmerge", "merge_and_unload", "disable_adapter"},
    "wrong_unmerge": {"unmerge", "disable_adapter"},
    "missing_unmerge": {"unmerge", "disable_adapter"},
    "mixed_batch_ignores_row_plan": {"mixed_batch"},
    "init_weights_ignored": {"init"},
    "forgets_a_tensor": {"save_load", "state_dict", "low_cpu_mem_usage", "adapters", "dtypes"},
}


def _mutate(monkeypatch, toy, name: str) -> None:
    from peft_toy import mutants

    monkeypatch.setenv("PEFT_TOY_MUTANT", name)  # a fresh interpreter imports the same mutant
    for attr, value in mutants.patches(name).items():
        monkeypatch.setattr(toy.ToyLinear, attr, value)


def test_the_eight_kinds_of_broken_method_are_all_listed():
    from peft_toy import mutants

    assert len(mutants.MUTANTS) == 8 and set(mutants.MUTANTS) | {"forgets_a_tensor"} == set(EXPECTED_FAILURES)


@pytest.mark.parametrize("mutant", sorted(EXPECTED_FAILURES))
def test_kit_catches_broken_variant(toy, monkeypatch, mutant):
    _mutate(monkeypatch, toy, mutant)
    report = run_conformance("toy", suite=TOY_SUITE, cases=["mlp"], skip=["fresh_interpreter"])
    assert not report.ok
    assert {r.check for r in report.failures} == EXPECTED_FAILURES[mutant], report.summary()
    assert all(r.message for r in report.failures)


def test_fresh_interpreter_catches_a_tensor_missing_from_the_file(toy, monkeypatch):
    _mutate(monkeypatch, toy, "forgets_a_tensor")
    report = run_conformance("toy", suite=TOY_SUITE, cases=["mlp"], checks=["fresh_interpreter"], extra_paths=[TOY_INSTALL])
    assert [r.status for r in report.results] == ["failed"], report.summary()
    assert "fresh interpreter" in report.failures[0].message and "bit-identical" in report.failures[0].message


def test_fresh_interpreter_needs_the_entry_point(toy):
    """Without the toy's .dist-info the new process can't find the method: the check says so."""
    report = run_conformance("toy", suite=TOY_SUITE, cases=["mlp"], checks=["fresh_interpreter"])
    assert not report.ok and "entry point named 'toy'" in report.failures[0].message


def test_report_api(toy):
    report = run_conformance("toy", suite=TOY_SUITE, cases=["mlp"], checks=["declaration", "merge", "hf_files"])
    assert report.ok
    assert [(r.check, r.case, r.status) for r in report.results] == [
        ("declaration", None, "passed"),
        ("merge", "mlp", "passed"),
        ("hf_files", "mlp", "skipped"),
    ]
    assert "1 skipped" in report.summary() and "no Hugging Face PEFT counterpart" in report.summary()
    report.raise_for_failures()
    assert report.to_dict()["ok"] is True
    with pytest.raises(ValueError, match="unknown conformance checks"):
        run_conformance("toy", suite=TOY_SUITE, checks=["no_such_check"])
    with pytest.raises(ValueError, match="unknown cases"):
        run_conformance("toy", suite=TOY_SUITE, cases=["nope"])


def test_checks_a_declaration_marks_not_applicable_are_skipped_with_the_reason(toy):
    from peft_core.testing import load_suite

    suite, _ = load_suite("toy", TOY_SUITE)
    declared = dataclasses.replace(suite, not_applicable={"merge": "the toy can't merge here"})
    report = run_conformance(declared, cases=["mlp"], checks=["declaration", "merge"])
    assert [(r.check, r.case, r.status) for r in report.results] == [
        ("declaration", None, "passed"),
        ("merge", None, "skipped"),
    ]
    assert "the toy can't merge here" in report.results[1].message
    with pytest.raises(ValueError, match="unknown conformance checks"):
        run_conformance(dataclasses.replace(suite, not_applicable={"no_such_check": "?"}), cases=["mlp"])


def test_a_failure_raises_with_every_problem_listed(toy, monkeypatch):
    from peft_core.testing import ConformanceError

    _mutate(monkeypatch, toy, "wrong_merge")
    report = run_conformance("toy", suite=TOY_SUITE, cases=["mlp"], checks=["merge", "merge_and_unload"])
    with pytest.raises(ConformanceError, match=r"(?s)FAILED merge\[mlp\].*FAILED merge_and_unload\[mlp\]"):
        report.raise_for_failures()


def test_method_without_a_declaration_is_told_how_to_add_one(toy):
    with pytest.raises(LookupError, match=r'entry-points\."peft\.conformance"'):
        run_conformance("toy")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("peft_toy.no_such_module:conformance", "names the module 'peft_toy.no_such_module', which is not installed"),
        ("peft_toy:no_such_function", "names 'no_such_function', which module 'peft_toy' does not define"),
    ],
    ids=["missing-module", "missing-function"],
)
def test_a_reference_to_something_missing_says_so(toy, ref, message):
    from peft_core.testing.runner import load_suite

    with pytest.raises(LookupError, match=message):
        load_suite("toy", ref)


def test_declaration_must_name_the_init_switch(toy):
    suite = dataclasses.replace(_toy_suite(), random_init=None)
    report = run_conformance(suite, checks=["declaration"])
    assert "random_init={'init_weights': False}" in report.failures[0].message


def test_declaration_cases_must_build_the_methods_config(toy):
    from peft_core import PeftConfig
    from dataclasses import dataclass

    @dataclass
    class OtherConfig(PeftConfig):  # another method's config class (never registered)
        peft_type: str = "OTHER_METHOD"

    wrong = Case("wrong", models.MLP, lambda: OtherConfig())
    suite = dataclasses.replace(_toy_suite(), cases=(*_toy_suite().cases, wrong))
    report = run_conformance(suite, checks=["declaration"])
    assert "builds a OtherConfig, not 'toy'" in report.failures[0].message


def test_merge_refusal_must_be_a_peft_error(toy, monkeypatch):
    """A method declared unable to merge must refuse with a PeftError and change nothing."""
    suite = dataclasses.replace(_toy_suite(), merge=False)
    report = run_conformance(suite, cases=["mlp"], checks=["merge", "merge_and_unload", "unmerge"])
    assert {r.check for r in report.failures} == {"merge", "merge_and_unload"}
    assert "succeeded, but it must be refused" in report.failures[0].message
    monkeypatch.setattr(toy.ToyModel, "supports_merge", False)
    report = run_conformance(suite, cases=["mlp"], checks=["merge", "merge_and_unload", "unmerge", "disable_adapter"])
    assert report.ok, report.summary()


def test_mixed_batch_refusal(toy, monkeypatch):
    suite = dataclasses.replace(_toy_suite(), mixed_batches=False)
    assert not run_conformance(suite, cases=["mlp"], checks=["mixed_batch"]).ok
    monkeypatch.setattr(toy.ToyLinear, "supports_mixed_batch", False)
    assert run_conformance(suite, cases=["mlp"], checks=["mixed_batch"]).ok


def test_bad_values_must_raise_config_error(toy):
    suite = dataclasses.replace(_toy_suite(), bad_values=({"r": 3},))  # a valid value declared bad
    report = run_conformance(suite, cases=["mlp"], checks=["bad_config"])
    assert "ToyConfig with {'r': 3}: accepted" in report.failures[0].message


def test_cases_on_models_needing_missing_modules_skip(toy):
    needs = models.TinyModel("needs", models.MLPModule, models.MLP.inputs, requires=("no_such_module_xyz",))
    suite = dataclasses.replace(_toy_suite(), cases=(Case("x", needs, _toy_suite().cases[0].config),))
    report = run_conformance(suite, checks=["changes_output"])
    assert [r.status for r in report.results] == ["skipped"]
    assert "no_such_module_xyz" in report.results[0].message


def test_every_check_has_a_one_line_description():
    assert all(c.doc for c in CHECKS.values())


def _toy_suite() -> Conformance:
    from peft_toy.conformance import conformance

    return conformance()


# -- Hugging Face detection ---------------------------------------------------------------------
def test_hf_peft_is_detected_by_its_distribution():
    from peft_core.testing import hf

    found, status = hf._find_hf_peft.__wrapped__()
    try:
        from importlib.metadata import distribution

        distribution("peft")
    except Exception:
        assert found is None
        return
    assert found is not None and status.startswith("Hugging Face PEFT ")


def test_a_peft_module_of_another_distribution_is_not_hf(monkeypatch, tmp_path):
    from peft_core.testing import hf

    fake = types.ModuleType("peft")
    fake.__file__ = str(tmp_path / "peft" / "__init__.py")  # e.g. a drop-in package providing `import peft`
    monkeypatch.setitem(sys.modules, "peft", fake)
    found, status = hf._find_hf_peft.__wrapped__()
    if "not installed" in status:
        assert found is None
        return
    assert found is None and "is not Hugging Face's distribution" in status


def test_without_hf_distribution_hf_checks_skip(monkeypatch):
    from importlib import metadata

    from peft_core.testing import hf

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    assert hf._find_hf_peft.__wrapped__() == (None, "Hugging Face PEFT (distribution 'peft') is not installed")


def test_kit_import_is_light():
    code = (
        "import sys, peft_core.testing; "
        "print(sorted(m for m in ('transformers', 'peft', 'pytest') if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
    assert peft_core.testing.models.LLAMA.requires == ("transformers",)
