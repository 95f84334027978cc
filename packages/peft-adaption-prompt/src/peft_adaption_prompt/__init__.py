"""peft-adaption-prompt: adaption prompts (LLaMA-Adapter: gated attention over learned tokens) for peft-core.

Importing the package registers the method `adaption_prompt` (peft_type `ADAPTION_PROMPT`); adapters saved
by Hugging Face PEFT with `peft_type: "ADAPTION_PROMPT"` load directly. Llama, Mistral and GPT-2 models.
"""

from peft_core import register_peft_method

from .attention import ARCHITECTURES
from .config import AdaptionPromptConfig
from .layer import AdaptedAttention
from .model import AdaptionPromptModel

__all__ = ["ARCHITECTURES", "AdaptedAttention", "AdaptionPromptConfig", "AdaptionPromptModel"]

register_peft_method("adaption_prompt", AdaptionPromptModel, plugin_api=">=1,<2")
