"""`MultitaskPromptEmbedding`: a shared prompt scaled element-wise by each task's low-rank matrix.

For task `t` the virtual tokens are `P ⊙ (C_t R_t)`, with the shared prompt `P [tokens, dim]`
(`embedding.weight`, saved as `prompt_embeddings`), `C = prefix_task_cols [tasks, tokens, ranks]` and
`R = prefix_task_rows [tasks, ranks, dim]`. The shared prompt starts like a prompt-tuning prompt
(random, from a text, or from sampled vocabulary); the `*_SOURCE_*` inits read a source adapter.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core import AdapterLoadError, ConfigError
from peft_core.serialization import read_weights_file
from peft_core.tensor_copy import copy_into_, shape_mismatches
from peft_prompt_tuning import PromptEmbedding, PromptTuningConfig

from .config import SOURCE_INITS, MultitaskPromptTuningConfig, MultitaskPromptTuningInit

COLS, ROWS, SHARED = "prefix_task_cols", "prefix_task_rows", "prompt_embeddings"
_AS_PROMPT_TUNING = ("TEXT", "SAMPLE_VOCAB", "RANDOM")


class MultitaskPromptEmbedding(PromptEmbedding):
    def __init__(self, config: MultitaskPromptTuningConfig, word_embeddings: nn.Module | None) -> None:
        init = config.prompt_tuning_init.value
        super().__init__(_prompt_tuning_view(config, init if init in _AS_PROMPT_TUNING else "RANDOM"), word_embeddings)
        total = config.num_virtual_tokens * config.num_transformer_submodules
        self.num_tasks = config.num_tasks
        # Hugging Face PEFT's draws, after the shared prompt's
        self.prefix_task_cols = nn.Parameter(torch.normal(mean=0, std=0.02, size=(config.num_tasks, total, config.num_ranks)))
        self.prefix_task_rows = nn.Parameter(torch.normal(mean=0, std=0.02, size=(config.num_tasks, config.num_ranks, config.token_dim)))
        if config.prompt_tuning_init in SOURCE_INITS and not config.inference_mode:
            self._start_from_source(config)

    def _start_from_source(self, config: MultitaskPromptTuningConfig) -> None:
        path = config.prompt_tuning_init_state_dict_path
        source = read_weights_file(path)
        missing = [k for k in (SHARED, COLS, ROWS) if k not in source]
        if SHARED in missing or (config.prompt_tuning_init is not MultitaskPromptTuningInit.ONLY_SOURCE_SHARED and missing):
            raise AdapterLoadError(f"{path} lacks {missing}: it is not a multitask prompt tuning adapter.")
        values = {"embedding.weight": source[SHARED]}
        if config.prompt_tuning_init is MultitaskPromptTuningInit.AVERAGE_SOURCE_TASKS:
            values[COLS] = source[COLS].mean(0, keepdim=True)
            values[ROWS] = source[ROWS].mean(0, keepdim=True)
        elif config.prompt_tuning_init is MultitaskPromptTuningInit.EXACT_SOURCE_TASK:
            task = config.prompt_tuning_init_task
            if task >= source[COLS].shape[0]:
                raise ConfigError(
                    f"prompt_tuning_init_task={task} but the source adapter {path} has {source[COLS].shape[0]} tasks."
                )
            values[COLS] = source[COLS][task].unsqueeze(0)
            values[ROWS] = source[ROWS][task].unsqueeze(0)
        own = dict(self.named_parameters())
        mismatched = shape_mismatches(own, values)
        if mismatched:
            key, given, expected = mismatched[0]
            raise ConfigError(
                f"{config.prompt_tuning_init.value} from {path}: {key} has shape {given} there but "
                f"{expected} here (num_virtual_tokens, num_ranks, the model's hidden size and, for "
                f"the averaged or exact source task, num_tasks=1 must match)."
            )
        copy_into_(own, values)

    def forward(self, indices: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        prompts = self.embedding(indices)
        scale = torch.matmul(torch.index_select(self.prefix_task_cols, 0, task_ids), torch.index_select(self.prefix_task_rows, 0, task_ids))
        return prompts * scale


def _prompt_tuning_view(config: MultitaskPromptTuningConfig, init: str) -> PromptTuningConfig:
    """The shared prompt's initialisation is prompt tuning's: the same fields as a PromptTuningConfig."""
    return PromptTuningConfig(
        task_type=config.task_type,
        num_virtual_tokens=config.num_virtual_tokens,
        token_dim=config.token_dim,
        num_transformer_submodules=config.num_transformer_submodules,
        num_attention_heads=config.num_attention_heads,
        num_layers=config.num_layers,
        inference_mode=config.inference_mode,
        prompt_tuning_init=init,
        prompt_tuning_init_text=config.prompt_tuning_init_text if init == "TEXT" else None,
        tokenizer_name_or_path=config.tokenizer_name_or_path if init == "TEXT" else None,
        tokenizer_kwargs=config.tokenizer_kwargs if init == "TEXT" else None,
    )
