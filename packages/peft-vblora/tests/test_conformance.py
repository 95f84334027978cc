"""peft-core's conformance kit on VB-LoRA: every check on every case of `peft_vblora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestVBLoRAConformance(ConformanceTests):
    method = "vblora"
