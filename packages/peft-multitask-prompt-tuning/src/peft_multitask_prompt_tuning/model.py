"""`MultitaskPromptTuningModel`: per-task virtual tokens in front of the input; `forward` / `generate`
take `task_ids` (one task per row)."""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from peft_core import AdapterLoadError, PeftError
from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import MultitaskPromptTuningConfig
from .encoder import COLS, ROWS, MultitaskPromptEmbedding

_CALL_TASK_IDS: contextvars.ContextVar[Any] = contextvars.ContextVar("peft_mpt_task_ids", default=None)


class TaskIdsError(PeftError, ValueError):
    """`task_ids` are missing, out of range, or not one per row."""


@contextlib.contextmanager
def _call_with(task_ids: Any) -> Iterator[None]:
    token = _CALL_TASK_IDS.set(task_ids)
    try:
        yield
    finally:
        _CALL_TASK_IDS.reset(token)


class MultitaskPromptTuningModel(PromptLearningTuner):
    prefix = "multitask_prompt_tuning_"
    config_cls = MultitaskPromptTuningConfig
    injects_cache = False

    def _create_prompt_encoder(self, config: MultitaskPromptTuningConfig, adapter_name: str,
                               word_embeddings: nn.Module | None) -> MultitaskPromptEmbedding:
        return MultitaskPromptEmbedding(config, word_embeddings)

    # -- task ids ---------------------------------------------------------------------------
    def forward(self, *args: Any, task_ids: Any = None, **kwargs: Any) -> Any:
        with _call_with(task_ids):
            return super().forward(*args, **kwargs)

    def generate(self, *args: Any, task_ids: Any = None, **kwargs: Any) -> Any:
        with _call_with(task_ids):
            return super().generate(*args, **kwargs)

    def _task_ids(self, batch_size: int, encoder: MultitaskPromptEmbedding, device: torch.device) -> torch.Tensor:
        task_ids = _CALL_TASK_IDS.get()
        if task_ids is None and encoder.num_tasks == 1:  # one task: nothing to choose (HF insists anyway)
            task_ids = torch.zeros(batch_size, dtype=torch.long)
        if task_ids is None:
            raise TaskIdsError(
                "Multitask prompt tuning needs task_ids: pass one task index per row, e.g. "
                "model(input_ids=ids, task_ids=torch.tensor([0, 1]))."
            )
        task_ids = torch.as_tensor(task_ids).reshape(-1)
        if task_ids.is_floating_point() or task_ids.dtype == torch.bool:
            raise TaskIdsError(f"task_ids must be integers, got {task_ids.dtype}.")
        if task_ids.numel() != batch_size:
            raise TaskIdsError(f"task_ids has {task_ids.numel()} entries but the batch has {batch_size} rows; give one per row.")
        if int(task_ids.min()) < 0 or int(task_ids.max()) >= encoder.num_tasks:
            raise TaskIdsError(f"task ids must be in 0..{encoder.num_tasks - 1} (num_tasks={encoder.num_tasks}), got {task_ids.tolist()}.")
        return task_ids.to(device=device, dtype=torch.long)

    def get_prompt(self, batch_size: int, adapter_name: str | None = None) -> Any:
        """The virtual tokens of each row's task, `[batch, tokens, dim]`."""
        name = adapter_name if adapter_name is not None else self.active_adapters[0]
        encoder = self.prompt_encoder[name]
        device = encoder.embedding.weight.device
        indices = torch.arange(encoder.num_tokens, device=device).unsqueeze(0).expand(batch_size, -1)
        return encoder(indices, self._task_ids(batch_size, encoder, device))

    # -- encoder-decoder models ------------------------------------------------------------------
    def _forward_seq2seq(self, config: MultitaskPromptTuningConfig, inputs: dict[str, Any]) -> Any:
        """Hugging Face PEFT's multitask layout: the first `num_virtual_tokens` rows go in front of the
        encoder's input, the other half in front of the decoder's (built from `labels` when no decoder
        input is given), whose labels get `-100` for them. (HF fails when `decoder_input_ids` are given;
        here they are embedded.) `generate` uses only the encoder half, as HF's does."""
        tokens = config.num_virtual_tokens
        input_ids, inputs_embeds = inputs.pop("input_ids", None), inputs.get("inputs_embeds")
        if input_ids is None and inputs_embeds is None:
            return self.model(**inputs)  # only encoder_outputs: the encoder already saw the virtual tokens
        embed = self._word_embeddings(self.model)
        if inputs_embeds is None:
            inputs_embeds = embed(input_ids)
        batch = inputs_embeds.shape[0]
        labels = inputs.get("labels")
        decoder_ids, decoder_embeds = inputs.pop("decoder_input_ids", None), inputs.get("decoder_inputs_embeds")
        if decoder_embeds is None:
            if decoder_ids is None:
                if labels is None:
                    raise ValueError("Multitask prompt tuning on an encoder-decoder model needs labels or decoder inputs.")
                decoder_ids = _shift_right(labels, self.model.config.pad_token_id, self.model.config.decoder_start_token_id)
            decoder_embeds = embed(decoder_ids)
        if inputs.get("attention_mask") is not None:
            inputs["attention_mask"] = _ones_before(inputs["attention_mask"], tokens)
        if inputs.get("decoder_attention_mask") is not None:
            inputs["decoder_attention_mask"] = _ones_before(inputs["decoder_attention_mask"], tokens)
        if labels is not None:
            inputs["labels"] = torch.cat((torch.full((batch, tokens), -100, dtype=labels.dtype, device=labels.device), labels), 1)
        prompts = self.get_prompt(batch).to(inputs_embeds.dtype)
        inputs["inputs_embeds"] = torch.cat((prompts[:, :tokens], inputs_embeds), dim=1)
        inputs["decoder_inputs_embeds"] = torch.cat((prompts[:, tokens:], decoder_embeds), dim=1)
        return self.model(**inputs)

    # -- saved state: the shared prompt plus the task factors (Hugging Face PEFT's bare keys) ----
    def adapter_state_dict(self, adapter_name: str) -> dict[str, torch.Tensor]:
        state = super().adapter_state_dict(adapter_name)
        encoder = self.prompt_encoder[adapter_name]
        state[COLS] = encoder.prefix_task_cols.detach().clone()
        state[ROWS] = encoder.prefix_task_rows.detach().clone()
        return state

    def load_adapter_state_dict(self, adapter_name: str, state: Mapping[str, torch.Tensor], strict: bool) -> bool:
        if adapter_name not in self.prompt_encoder:
            raise AdapterLoadError(f"The model has no adapter named {adapter_name!r} to load weights into.")
        encoder = self.prompt_encoder[adapter_name]
        factors = {COLS: encoder.prefix_task_cols, ROWS: encoder.prefix_task_rows}
        missing = [k for k in factors if k not in state]
        if missing:
            msg = f"Adapter {adapter_name!r}: the weights file lacks {missing}; it is not a multitask prompt tuning adapter."
            if strict:
                raise AdapterLoadError(msg + " Pass strict=False to load the shared prompt alone.")
            warnings.warn(msg, UserWarning, stacklevel=3)
        for key, dest in factors.items():
            if key in state and tuple(state[key].shape) != tuple(dest.shape):
                raise AdapterLoadError(
                    f"{key} has shape {tuple(state[key].shape)} but the adapter expects {tuple(dest.shape)} "
                    f"(num_tasks, num_virtual_tokens, num_ranks or the hidden size differ)."
                )
        rest = {k: v for k, v in state.items() if k not in factors}
        super().load_adapter_state_dict(adapter_name, rest, strict)
        with torch.no_grad():
            for key, dest in factors.items():
                if key in state:
                    dest.copy_(state[key].to(dest.device, dest.dtype))
        return True


def _ones_before(mask: torch.Tensor, count: int) -> torch.Tensor:
    return torch.cat((torch.ones(mask.shape[0], count, dtype=mask.dtype, device=mask.device), mask), dim=1)


def _shift_right(labels: torch.Tensor, pad_token_id: int | None, start_token_id: int | None) -> torch.Tensor:
    """Decoder inputs from labels: shifted right behind the start token, -100 replaced by padding."""
    if pad_token_id is None or start_token_id is None:
        raise ValueError("The model's config needs pad_token_id and decoder_start_token_id to build decoder inputs from labels.")
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)
