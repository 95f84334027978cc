"""peft-core's conformance kit on LoHa: every check on every case of `peft_loha.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestLohaConformance(ConformanceTests):
    method = "loha"
