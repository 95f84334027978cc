"""peft-core's conformance kit on trainable tokens: every check on every case of `peft_trainable_tokens.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestTrainableTokensConformance(ConformanceTests):
    method = "trainable_tokens"
