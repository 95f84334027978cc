"""peft-core's conformance kit on AdaLoRA: every check on every case of `peft_adalora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestAdaLoraConformance(ConformanceTests):
    method = "adalora"
