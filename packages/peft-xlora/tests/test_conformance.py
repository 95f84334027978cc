"""peft-core's conformance kit on X-LoRA: every check on every case of `peft_xlora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestXLoraConformance(ConformanceTests):
    method = "xlora"
