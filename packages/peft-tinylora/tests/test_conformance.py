"""peft-core's conformance kit on TinyLoRA: every check on every case of `peft_tinylora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestTinyLoraConformance(ConformanceTests):
    method = "tinylora"
