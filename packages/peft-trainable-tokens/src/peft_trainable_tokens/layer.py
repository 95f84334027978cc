"""`TrainableTokensLayer`: an embedding (or a layer tied to one) whose selected rows are trained.

Per adapter the layer holds the trained rows (`trainable_tokens_delta [n, dim]`, the only saved
tensor), a copy of the original rows (`trainable_tokens_original`, a non-persistent buffer used to
unmerge) and the row indices. The forward pass uses the base weight with those rows *replaced*
(`index_copy`, not added, as in Hugging Face PEFT), so a resized embedding whose new rows were
re-initialised still gives the trained values.

A layer tied to another one (an LM head sharing the input embedding's weight) owns nothing: it reads
the other layer's rows, so both follow the same training. It is saved only when `save_tied` (the
standalone method saves the shared rows under both paths, as Hugging Face PEFT does; LoRA's
`trainable_token_indices` saves them once).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from peft_core import AdapterTensor, BaseTunerLayer, BatchPlan, current_batch_plan
from peft_core.errors import ConfigError
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.embedding_lookup import embed_like
from torch import nn


class TrainableTokensLayer(BaseTunerLayer):
    """Trainable rows of the wrapped `nn.Embedding` (or `nn.Linear` tied to one); see the module docstring."""

    adapter_layer_names = ("trainable_tokens_delta",)
    other_param_names = ("token_indices", "trainable_tokens_original")
    supports_mixed_batch = True

    def __init__(
        self,
        base_layer: nn.Module,
        tied_to: TrainableTokensLayer | None = None,
        saved_prefix: str = "",
        save_tied: bool = True,
    ) -> None:
        super().__init__(base_layer)
        base = self.get_base_layer()
        if not isinstance(base, (nn.Embedding, nn.Linear)):
            raise ConfigError(
                f"Trainable tokens adapt an nn.Embedding (or an nn.Linear tied to one), not a {type(base).__name__}; "
                f"point target_modules / trainable_token_indices at the embedding layer."
            )
        # saved_prefix: where the rows sit in the file relative to this layer ("token_adapter." for LoRA's
        # trainable_token_indices, Hugging Face PEFT's wrapper); the tied layer lives in a list so that it is
        # not registered as a submodule (it is saved through its own path)
        self.__dict__.update(_tied=[tied_to] if tied_to is not None else [], saved_prefix=saved_prefix, save_tied=save_tied)
        if tied_to is None:
            self.trainable_tokens_delta = nn.ParameterDict()
            self.trainable_tokens_original = BufferDict(persistent=False)  # kept to unmerge, never saved
            self.__dict__["token_indices"] = {}
        else:  # the source's containers (registered here too, as in Hugging Face PEFT: one tensor, two names)
            self.trainable_tokens_delta = tied_to.trainable_tokens_delta
            self.trainable_tokens_original = tied_to.trainable_tokens_original
            self.__dict__["token_indices"] = tied_to.token_indices

    @property
    def tied_to(self) -> TrainableTokensLayer | None:
        return self._tied[0] if self._tied else None

    @property
    def embedding_dim(self) -> int:
        base = self.get_base_layer()
        return base.embedding_dim if isinstance(base, nn.Embedding) else base.in_features

    # -- creation ---------------------------------------------------------------------------
    def update_layer(self, adapter_name: str, token_indices: Sequence[int] = (), init_weights: bool = True) -> None:
        """Add adapter `adapter_name` training rows `token_indices` (a tied layer follows its source)."""
        if self.tied_to is not None:
            return
        weight = self.get_base_layer().weight
        indices = list(token_indices)
        if not indices:
            raise ConfigError(
                f"Trainable tokens for adapter {adapter_name!r}: no token indices given; list the rows to train."
            )
        rows = weight.shape[0]
        outside = [i for i in indices if not 0 <= i < rows]
        if outside:
            raise ConfigError(
                f"Trainable tokens for adapter {adapter_name!r}: token ids {outside} are outside the embedding's "
                f"{rows} rows. Resize the embeddings first (model.resize_token_embeddings(len(tokenizer)))."
            )
        self.token_indices[adapter_name] = indices
        if weight.is_meta:
            originals = torch.empty((len(indices), self.embedding_dim), dtype=weight.dtype, device="meta")
        else:
            originals = weight[indices]
        if init_weights or weight.is_meta:
            values = originals
        else:
            values = torch.randn((len(indices), self.embedding_dim), dtype=weight.dtype, device=weight.device)
        self.trainable_tokens_delta[adapter_name] = nn.Parameter(values.clone(), requires_grad=True)
        self.trainable_tokens_original[adapter_name] = originals.detach().clone()
        self._move_adapter_to_device_of_base_layer(adapter_name)

    # -- saving -----------------------------------------------------------------------------
    def adapter_tensors(self, adapter_name: str) -> list[AdapterTensor]:
        if adapter_name not in self.trainable_tokens_delta or (self.tied_to is not None and not self.save_tied):
            return []
        delta = self.trainable_tokens_delta[adapter_name]
        return [
            AdapterTensor(
                f"{self.saved_prefix}trainable_tokens_delta", f"trainable_tokens_delta.{adapter_name}", delta
            )
        ]

    def adapter_parameters(self, adapter_name: str) -> list[nn.Parameter]:
        if self.tied_to is not None:  # owned (and made trainable or frozen) by the source layer
            return []
        return super().adapter_parameters(adapter_name)

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        if self.tied_to is None:
            super().set_adapter(adapter_names, inference_mode=inference_mode)
            return
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        self.__dict__["_active_adapter"] = [n for n in names if self.has_adapter(n)]

    def delete_adapter(self, adapter_name: str) -> None:
        if self.tied_to is None:
            super().delete_adapter(adapter_name)
            return
        if adapter_name in self.merged_adapters:
            self.merged_adapters.remove(adapter_name)
        self.__dict__["_active_adapter"] = [n for n in self._active_adapter if n != adapter_name]

    # -- math -------------------------------------------------------------------------------
    def _check_disjoint(self, names: Sequence[str]) -> None:
        """Several adapters may only replace disjoint rows (overlapping ones would be ambiguous)."""
        names = list(dict.fromkeys([*self.merged_adapters, *names]))
        seen: set[int] = set()
        for name in names:
            indices = set(self.token_indices[name])
            if seen & indices:
                raise ValueError(
                    f"Token indices of adapter {name!r} ({sorted(seen & indices)}) are also trained by another active "
                    f"or merged adapter; only adapters with disjoint token indices can be combined."
                )
            seen |= indices

    def merged_weight(self, names: Sequence[str]) -> torch.Tensor:
        """The base weight with the rows of adapters `names` replaced (a new tensor)."""
        weight = self.get_base_layer().weight
        for name in names:
            index = torch.tensor(self.token_indices[name], device=weight.device)
            weight = weight.index_copy(0, index, self.trainable_tokens_delta[name].to(weight))
        return weight

    @property
    def weight(self) -> torch.Tensor:
        """The weight the layer computes with: the base weight with the active adapters' rows in place
        (models that read `embed_tokens.weight` directly see the trained rows)."""
        active = self._running_adapters()
        return self.merged_weight(active) if active else self.get_base_layer().weight

    def _running_adapters(self) -> list[str]:
        if self._disable_adapters or self.merged:
            return []
        return [n for n in self._active_adapter if n in self.trainable_tokens_delta]

    def _compute(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        base = self.get_base_layer()
        if isinstance(base, nn.Embedding):
            out = embed_like(base, x, weight)
            scale = getattr(base, "embed_scale", None)  # scaled embeddings (Gemma 3) scale in their forward
            if isinstance(scale, (int, float)) or (torch.is_tensor(scale) and scale.numel() == 1):
                out = out * torch.as_tensor(scale, device=out.device).to(out.dtype)
            return out
        return F.linear(x, weight, base.bias)  # an LM head tied to the embedding

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self._unmerge_if_disabled() or self.merged:
            return self.base_layer(x, *args, **kwargs)
        plan = current_batch_plan()
        if plan is not None:
            return self._mixed_batch_forward(x, plan)
        active = self._running_adapters()
        if not active:
            return self.base_layer(x, *args, **kwargs)
        self._check_disjoint(active)
        return self._compute(x, self.merged_weight(active))

    def _mixed_batch_forward(self, x: torch.Tensor, plan: BatchPlan) -> torch.Tensor:
        """Each row with its own adapter's rows in place (rows of other adapters use the base weight)."""
        if x.shape[0] != plan.batch_size:
            raise ValueError(
                f"Mixed-adapter batch: the embedding got {x.shape[0]} rows but adapter_names has {plan.batch_size} "
                f"entries; run one forward per adapter instead."
            )
        result = self._compute(x, self.get_base_layer().weight)
        for name in plan.adapter_groups():
            if name in self.trainable_tokens_delta:
                rows = plan.rows(name, x.device)
                result[rows] = self._compute(plan.take(x, name), self.merged_weight([name]))
        return result

    # -- merging ----------------------------------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Sequence[str] | None = None) -> None:
        names = self.active_adapters if adapter_names is None else list(adapter_names)
        names = [n for n in names if n in self.trainable_tokens_delta]
        already = [n for n in names if n in self.merged_adapters]
        if already:
            warnings.warn(f"Adapters {already} are already merged into this layer; skipping them.", stacklevel=2)
        names = [n for n in names if n not in self.merged_adapters]
        if not names:
            return
        self._check_disjoint(names)
        base = self.get_base_layer()
        merged = self.merged_weight(names).detach()
        if safe_merge and not torch.isfinite(merged).all():
            raise ValueError(
                f"safe_merge: the trained rows of adapters {names} hold NaN/inf; the embedding was left unchanged."
            )
        base.weight.data = merged
        self.merged_adapters.extend(names)

    def unmerge(self) -> None:
        base = self.get_base_layer()
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            index = torch.tensor(self.token_indices[name], device=base.weight.device)
            base.weight.data.index_copy_(0, index, self.trainable_tokens_original[name].to(base.weight))

    def __repr__(self) -> str:
        return "trainable_tokens." + super().__repr__()
