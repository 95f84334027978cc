"""`CPTModel`: the context's virtual tokens in front of the input, and CPT's loss when `labels` are given.

`forward` takes `input_type_mask` (token types of the input, see `loss.py`) besides the usual arguments.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from peft_core.tuners.prompt_learning import PromptLearningTuner

from .config import CPTConfig
from .encoder import CPTEmbedding
from .loss import context_labels_and_types, cpt_loss


class CPTModel(PromptLearningTuner):
    prefix = "cpt_"
    config_cls = CPTConfig
    injects_cache = False

    def _create_prompt_encoder(self, config: CPTConfig, adapter_name: str, word_embeddings: nn.Module | None) -> CPTEmbedding:
        return CPTEmbedding(config, word_embeddings)

    def forward(self, *args: Any, labels: Any = None, input_type_mask: Any = None, **kwargs: Any) -> Any:
        """The base model's forward with the context in front; with `labels`, CPT's loss replaces the model's."""
        if not self._prompt_enabled:
            return self.model(*args, labels=labels, **kwargs)
        output = super().forward(*args, **kwargs)
        if labels is not None:
            config = self._active_config()
            full_labels, types = context_labels_and_types(config, labels, input_type_mask)
            output.loss = cpt_loss(output.logits, full_labels, types, config)
        return output
