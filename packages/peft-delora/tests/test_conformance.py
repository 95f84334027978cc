"""peft-core's conformance kit on DeLoRA: every check on every case of `peft_delora.conformance`."""

import pytest

ConformanceTests = pytest.importorskip(
    "peft_core.testing.pytest_suite", reason="peft-core's conformance kit (issue 16) is not on this branch yet"
).ConformanceTests


class TestDeloraConformance(ConformanceTests):
    method = "delora"
