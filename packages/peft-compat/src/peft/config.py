"""`peft.config`: the config base classes (peft-core's)."""

from peft_core import PeftConfig, PromptLearningConfig

PeftConfigMixin = PeftConfig  # Hugging Face's base of PeftConfig; here they are one class

__all__ = ["PeftConfig", "PeftConfigMixin", "PromptLearningConfig"]
