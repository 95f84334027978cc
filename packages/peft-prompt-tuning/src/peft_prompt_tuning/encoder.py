"""`PromptEmbedding`: the virtual tokens themselves, with their three initialisations."""

from __future__ import annotations

import math

import torch
from torch import nn

from peft_core.tuners.prompt_learning import PromptEncoderBase

from .config import PromptTuningConfig, PromptTuningInit

TEXT_INIT_EXTRA = "text-init"


class PromptEmbedding(PromptEncoderBase):
    """`num_virtual_tokens * num_transformer_submodules` rows of `token_dim`; the output is the rows."""

    def __init__(self, config: PromptTuningConfig, word_embeddings: nn.Module | None) -> None:
        total = config.num_virtual_tokens * config.num_transformer_submodules
        super().__init__(total, config.token_dim)  # RANDOM: nn.Embedding's N(0, 1)
        if config.inference_mode or config.prompt_tuning_init is PromptTuningInit.RANDOM:
            return  # a loaded adapter gets its rows from the file
        if word_embeddings is None:
            raise ValueError(
                f"prompt_tuning_init={config.prompt_tuning_init.value!r} copies rows of the model's input embeddings, "
                f"but the model has none; use prompt_tuning_init='RANDOM'."
            )
        device = word_embeddings.weight.device
        if config.prompt_tuning_init is PromptTuningInit.SAMPLE_VOCAB:
            token_ids = torch.randint(0, word_embeddings.num_embeddings, (total,), dtype=torch.long).to(device)
        else:
            token_ids = torch.tensor(_text_token_ids(config, total), dtype=torch.long, device=device)
        with torch.no_grad():
            rows = word_embeddings(token_ids).detach().clone().to(torch.float32)
        self.embedding.weight = nn.Parameter(rows)


def _text_token_ids(config: PromptTuningConfig, total: int) -> list[int]:
    """Token ids of the init text, repeated until there are `total`, then cut to `total`."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ImportError(
            "prompt_tuning_init='TEXT' loads a tokenizer with transformers, which is not installed. "
            f'Install the extra: pip install "peft-prompt-tuning[{TEXT_INIT_EXTRA}]".'
        ) from exc
    kwargs = dict(config.tokenizer_kwargs or {})
    kwargs.pop("trust_remote_code", None)
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer_name_or_path, **kwargs)
    ids = list(tokenizer(config.prompt_tuning_init_text)["input_ids"])
    if not ids:
        raise ValueError(f"prompt_tuning_init_text {config.prompt_tuning_init_text!r} tokenises to nothing.")
    if len(ids) < total:
        ids = ids * math.ceil(total / len(ids))
    return ids[:total]
