"""peft-core's conformance kit on MiSS: every check on every case of `peft_miss.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestMissConformance(ConformanceTests):
    method = "miss"


class TestMissVariantsConformance(ConformanceTests):
    """`bat` and `mini` always start at zero: no init switch to check (test_layers checks the zero start)."""

    method = "miss"
    suite = "peft_miss.conformance:variants"
    skip_checks = ("init",)
    skip_reason = "bat and mini have no random start; their zero start is tested in test_layers.py"
