"""peft-core's conformance kit on multitask prompt tuning: every check on every case of
`peft_multitask_prompt_tuning.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestMultitaskPromptTuningConformance(ConformanceTests):
    method = "multitask_prompt_tuning"
