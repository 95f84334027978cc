"""peft-core's conformance kit on RandLoRA: every check on every case of `peft_randlora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestRandLoraConformance(ConformanceTests):
    method = "randlora"
