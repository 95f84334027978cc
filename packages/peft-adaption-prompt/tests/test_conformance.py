"""peft-core's conformance kit on adaption prompts: every check on every case of `peft_adaption_prompt.conformance`."""

from peft_core.testing.pytest_suite import ConformanceTests


class TestAdaptionPromptConformance(ConformanceTests):
    method = "adaption_prompt"
