"""peft-core's conformance kit on PSOFT: every check on every case of `peft_psoft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPsoftConformance(ConformanceTests):
    method = "psoft"
