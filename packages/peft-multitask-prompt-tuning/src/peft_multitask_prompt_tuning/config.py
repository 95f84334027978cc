"""`MultitaskPromptTuningConfig`: Hugging Face PEFT's multitask prompt tuning config (0.21.2), field for field."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import ConfigError
from peft_core.tuners.prompt_learning import PromptLearningConfig


class MultitaskPromptTuningInit(str, enum.Enum):
    """How the shared prompt and the per-task factors start."""

    TEXT = "TEXT"  # the prompt from the embeddings of a text
    RANDOM = "RANDOM"  # N(0, 1) prompt
    SAMPLE_VOCAB = "SAMPLE_VOCAB"  # embeddings of random vocabulary tokens (accepted by HF through prompt tuning)
    AVERAGE_SOURCE_TASKS = "AVERAGE_SOURCE_TASKS"  # source prompt, task factors averaged over the source tasks
    EXACT_SOURCE_TASK = "EXACT_SOURCE_TASK"  # source prompt, the factors of source task `prompt_tuning_init_task`
    ONLY_SOURCE_SHARED = "ONLY_SOURCE_SHARED"  # source prompt only, fresh task factors

    def __str__(self) -> str:
        return self.value


SOURCE_INITS = (
    MultitaskPromptTuningInit.AVERAGE_SOURCE_TASKS,
    MultitaskPromptTuningInit.EXACT_SOURCE_TASK,
    MultitaskPromptTuningInit.ONLY_SOURCE_SHARED,
)


@dataclass
class MultitaskPromptTuningConfig(PromptLearningConfig):
    """Multitask prompt tuning (MPT): one shared prompt, scaled element-wise per task by a rank-`num_ranks`
    matrix `prefix_task_cols[t] @ prefix_task_rows[t]`. Trained on source tasks, the shared prompt and
    the factors transfer to a target task (`AVERAGE_SOURCE_TASKS`, `EXACT_SOURCE_TASK`,
    `ONLY_SOURCE_SHARED` read a source adapter file). Every forward call needs `task_ids`, except with
    `num_tasks=1`, where every row is task 0.
    """

    peft_type: str = "MULTITASK_PROMPT_TUNING"
    prompt_tuning_init: Union[MultitaskPromptTuningInit, str] = field(
        default=MultitaskPromptTuningInit.RANDOM,
        metadata={"help": "TEXT, RANDOM, SAMPLE_VOCAB, AVERAGE_SOURCE_TASKS, EXACT_SOURCE_TASK or ONLY_SOURCE_SHARED."},
    )
    prompt_tuning_init_text: Optional[str] = field(default=None, metadata={"help": "The text (TEXT only)."})
    tokenizer_name_or_path: Optional[str] = field(default=None, metadata={"help": "Tokenizer of the text (TEXT only)."})
    tokenizer_kwargs: Optional[dict] = field(default=None, metadata={"help": "AutoTokenizer arguments (TEXT only)."})
    prompt_tuning_init_state_dict_path: Optional[str] = field(
        default=None, metadata={"help": "Source adapter weights (.safetensors or .bin) for the *_SOURCE_* inits."}
    )
    prompt_tuning_init_task: Optional[int] = field(default=0, metadata={"help": "Source task of EXACT_SOURCE_TASK."})
    num_ranks: Optional[int] = field(default=1, metadata={"help": "Rank of each task's scaling matrix."})
    num_tasks: Optional[int] = field(default=1, metadata={"help": "Number of tasks."})

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        known = {m.value: m for m in MultitaskPromptTuningInit}
        if str(self.prompt_tuning_init) not in known:
            raise ConfigError(f"{name}.prompt_tuning_init must be one of {sorted(known)}, got {self.prompt_tuning_init!r}.")
        self.prompt_tuning_init = known[str(self.prompt_tuning_init)]
        text = self.prompt_tuning_init is MultitaskPromptTuningInit.TEXT
        if text and (not self.tokenizer_name_or_path or self.prompt_tuning_init_text is None):
            raise ConfigError(f"{name}: prompt_tuning_init='TEXT' needs tokenizer_name_or_path and prompt_tuning_init_text.")
        if self.tokenizer_kwargs and not text:
            raise ConfigError(f"{name}.tokenizer_kwargs are only used with prompt_tuning_init='TEXT'.")
        if self.prompt_tuning_init in SOURCE_INITS and not self.prompt_tuning_init_state_dict_path:
            raise ConfigError(
                f"{name}: prompt_tuning_init={self.prompt_tuning_init.value!r} starts from a source adapter; set "
                f"prompt_tuning_init_state_dict_path to its adapter_model.safetensors."
            )
        for attr in ("num_ranks", "num_tasks"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}.{attr} must be a positive integer, got {value!r}.")
        task = self.prompt_tuning_init_task
        exact = self.prompt_tuning_init is MultitaskPromptTuningInit.EXACT_SOURCE_TASK
        if (task is not None and task < 0) or (exact and task is None):
            raise ConfigError(f"{name}.prompt_tuning_init_task must be a source task index (>= 0), got {task!r}.")
