"""peft-core's conformance kit on LN tuning: every check on every case of `peft_ln_tuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestLNTuningConformance(ConformanceTests):
    method = "ln_tuning"
