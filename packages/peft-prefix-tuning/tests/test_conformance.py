"""peft-core's conformance kit on prefix tuning: every check on every case of `peft_prefix_tuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPrefixTuningConformance(ConformanceTests):
    method = "prefix_tuning"
