"""peft-core's conformance kit on prompt tuning: every check on every case of `peft_prompt_tuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestPromptTuningConformance(ConformanceTests):
    method = "prompt_tuning"
