"""peft-core's conformance kit on LoRA: every check on every case of `peft_lora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestLoraConformance(ConformanceTests):
    method = "lora"
