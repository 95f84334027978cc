"""`DetachedShadowModel`: the shadow network alone, returned by `ShadowModel.unload_shadow()`.

It computes `head(projection(backbone(x)))`; the per-block updates need the base model and are not
part of it. With the base's LM head it is a causal LM (`generate`, KV cache); with a classifier it
pools the last non-padding token. Imports transformers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutput

from .losses import last_token, sequence_classification_loss, shifted_cross_entropy


class DetachedShadowModel(PreTrainedModel, GenerationMixin):
    main_input_name = "input_ids"
    base_model_prefix = "backbone"
    _supports_cache_class = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # arguments generate passes to causal LMs that a bare backbone does not take
    _lm_only_kwargs = ("logits_to_keep", "num_logits_to_keep")

    def __init__(
        self,
        backbone: PreTrainedModel,
        projection: nn.Module | None = None,
        head: nn.Module | None = None,
        is_classification: bool = False,
        input_embeddings: nn.Module | None = None,
    ) -> None:
        super().__init__(backbone.config)
        self.backbone = backbone
        self.shadow_hidden_projection = projection if projection is not None else nn.Identity()
        self.head = head
        self.is_classification = is_classification
        # in a list: a table shared with the base model is used, not registered (nor saved) here
        self._shared_input_embeddings: list[nn.Module | None] = [input_embeddings]
        self.generation_config = getattr(backbone, "generation_config", None) or GenerationConfig.from_model_config(
            self.config
        )

    def can_generate(self) -> bool:
        return getattr(self, "head", None) is not None and not getattr(self, "is_classification", False)

    def get_input_embeddings(self) -> nn.Module:
        shared = self._shared_input_embeddings[0]
        return shared if shared is not None else self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        if self._shared_input_embeddings[0] is not None:
            self._shared_input_embeddings[0] = value
        else:
            self.backbone.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        return None if self.is_classification else self.head

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        for key in self._lm_only_kwargs:
            kwargs.pop(key, None)
        kwargs["return_dict"] = True
        if self._shared_input_embeddings[0] is not None and kwargs.get("inputs_embeds") is None:
            if input_ids is None:
                raise ValueError("DetachedShadowModel needs input_ids or inputs_embeds.")
            kwargs["inputs_embeds"] = self.get_input_embeddings()(input_ids)
            input_ids = None
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = self.shadow_hidden_projection(out.last_hidden_state)
        if self.head is None:
            return hidden
        if self.is_classification:
            logits = self.head(last_token(hidden, attention_mask))
            loss = sequence_classification_loss(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)
        logits = self.head(hidden)
        loss = shifted_cross_entropy(logits, labels) if labels is not None else None
        cache = out.get("cache", out.get("past_key_values")) if hasattr(out, "get") else None
        output = CausalLMOutputWithPast(loss=loss, logits=logits)
        field = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
        setattr(output, field, cache)
        return output
