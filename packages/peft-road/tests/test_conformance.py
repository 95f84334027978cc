"""peft-core's conformance kit on RoAd: every check on every case of `peft_road.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestRoadConformance(ConformanceTests):
    method = "road"
