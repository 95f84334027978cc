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

register_peft_method(
    name="adaption_prompt",
    config_cls=AdaptionPromptConfig,
    model_cls=AdaptionPromptModel,
    prefix="adaption_",  # both tensors: adaption_prompt and adaption_gate (HF's names)
    default_target_modules={name: (arch.target_modules,) for name, arch in ARCHITECTURES.items()},
    plugin_api=">=1,<2",
)
