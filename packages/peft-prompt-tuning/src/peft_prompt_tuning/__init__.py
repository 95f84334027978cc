"""Prompt tuning for peft-core: learned virtual tokens in front of the input (Hugging Face PEFT's
`PROMPT_TUNING`, file-compatible)."""

from peft_core import register_peft_method

from .config import PromptTuningConfig, PromptTuningInit
from .encoder import PromptEmbedding
from .model import PromptTuningModel

register_peft_method("prompt_tuning", PromptTuningModel, plugin_api=">=1,<2")

__all__ = ["PromptEmbedding", "PromptTuningConfig", "PromptTuningInit", "PromptTuningModel"]
