"""peft-core's conformance kit on WaveFT: every check on every case of `peft_waveft.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestWaveFTConformance(ConformanceTests):
    method = "waveft"
