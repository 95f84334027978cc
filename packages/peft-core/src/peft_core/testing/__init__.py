"""The conformance kit: the checks every method package runs on itself, tiny models, and Hugging
Face PEFT round-trip helpers.

A method package declares its cases in its installed source (`Conformance.of(config_cls, on(model,
...), ...)` or a hand-built `Conformance`, named by a `peft.conformance` entry point) and runs the
kit with a few lines of pytest
(`peft_core.testing.pytest_suite.ConformanceTests`) or as a function (`run_conformance`, which
needs no pytest: release tooling calls it in a fresh venv). See docs/write-a-method.md.

Importing this package does not import transformers or Hugging Face PEFT; models and checks that
need them import them when used.
"""

from . import models
from .builder import CaseSpec, on
from .declare import CONFORMANCE_ENTRY_POINT_GROUP, Case, Conformance, HuggingFace, TinyModel, with_overrides
from .harness import CheckFailed, CheckSkipped, perturb
from .models import output_of
from .runner import CHECKS, CheckResult, ConformanceError, ConformanceReport, load_suite, run_conformance
from .smoke import TinyMLP, example_config, smoke_test

__all__ = [
    "CHECKS",
    "CONFORMANCE_ENTRY_POINT_GROUP",
    "Case",
    "CaseSpec",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "Conformance",
    "ConformanceError",
    "ConformanceReport",
    "HuggingFace",
    "TinyMLP",
    "TinyModel",
    "example_config",
    "load_suite",
    "models",
    "on",
    "output_of",
    "perturb",
    "run_conformance",
    "smoke_test",
    "with_overrides",
]
