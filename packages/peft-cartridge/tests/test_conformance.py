"""peft-core's conformance kit on `cartridge`: every check on every case of `peft_cartridge.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestCartridgeConformance(ConformanceTests):
    method = "cartridge"
