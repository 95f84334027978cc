"""peft-core's conformance kit on OSF: every check on every case of `peft_osf.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestOSFConformance(ConformanceTests):
    method = "osf"
