"""peft-core's conformance kit on p-tuning: every check on every case of `peft_p_tuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPTuningConformance(ConformanceTests):
    method = "p_tuning"
