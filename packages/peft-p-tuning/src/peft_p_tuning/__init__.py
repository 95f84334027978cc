"""P-tuning for peft-core: virtual tokens produced by a trained MLP/LSTM prompt encoder (Hugging Face
PEFT's `P_TUNING`, file-compatible)."""

from peft_core import register_peft_method

from .config import PromptEncoderConfig, PromptEncoderReparameterizationType
from .encoder import PromptEncoder
from .model import PTuningModel

register_peft_method("p_tuning", PTuningModel, plugin_api=">=1,<2")

__all__ = ["PTuningModel", "PromptEncoder", "PromptEncoderConfig", "PromptEncoderReparameterizationType"]
