"""peft-core's conformance kit on Poly: every check on every case of `peft_poly.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPolyConformance(ConformanceTests):
    method = "poly"
