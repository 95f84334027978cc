"""peft-multitask-prompt-tuning: multitask prompt tuning (a shared prompt scaled per task) for peft-core.

Importing the package registers the method `multitask_prompt_tuning` (peft_type `MULTITASK_PROMPT_TUNING`);
adapters saved by Hugging Face PEFT with that peft type load directly. Every forward call takes `task_ids`
(optional for a single-task adapter).
"""

from peft_core import register_peft_method

from .config import MultitaskPromptTuningConfig, MultitaskPromptTuningInit
from .encoder import MultitaskPromptEmbedding
from .model import MultitaskPromptTuningModel, TaskIdsError

__all__ = [
    "MultitaskPromptEmbedding",
    "MultitaskPromptTuningConfig",
    "MultitaskPromptTuningInit",
    "MultitaskPromptTuningModel",
    "TaskIdsError",
]

register_peft_method("multitask_prompt_tuning", MultitaskPromptTuningModel, plugin_api=">=1,<2")
