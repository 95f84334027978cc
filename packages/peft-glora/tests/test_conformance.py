"""peft-core's conformance kit on `glora`: every check on every case of `peft_glora.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestGloraConformance(ConformanceTests):
    method = "glora"
