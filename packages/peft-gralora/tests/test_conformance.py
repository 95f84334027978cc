"""peft-core's conformance kit on GraLoRA: every check on every case of `peft_gralora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestGraloraConformance(ConformanceTests):
    method = "gralora"
