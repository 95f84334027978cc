"""Prompt encoders: what produces one adapter's virtual-token matrix, and the per-adapter container of them
that behaves like an adapter layer for core's bookkeeping (see `tuners.prompt_learning`)."""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import AdapterLoadError


class PromptEncoderBase(nn.Module):
    """Produces one adapter's virtual-token matrix.

    `embedding` holds one row per virtual token. Subclasses with a reparameterisation network
    (an MLP, an LSTM, a projection) override `forward` and set `reparameterized` while that network
    exists; a loaded adapter has only `embedding`, holding the final matrix.
    """

    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_tokens, dim)

    @property
    def reparameterized(self) -> bool:
        """True when `forward` is more than a lookup in `embedding`."""
        return False

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """What trains while the adapter is active (default: every parameter). Encoders with a fixed part
        (e.g. embeddings of a given context, only corrected by another tensor) leave it out."""
        return self.parameters()

    @property
    def num_tokens(self) -> int:
        return self.embedding.num_embeddings

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embedding(indices)

    def prompt_matrix(self) -> torch.Tensor:
        """The final virtual-token matrix `[num_tokens, dim]` (what is saved and what the model sees)."""
        if not self.reparameterized:
            return self.embedding.weight
        indices = torch.arange(self.num_tokens, device=self.embedding.weight.device)
        return self(indices.unsqueeze(0))[0]

    def load_prompt_matrix(self, matrix: torch.Tensor) -> None:
        if self.reparameterized:
            raise ValueError(
                f"{type(self).__name__} holds a trainable reparameterisation network; a saved prompt matrix (its "
                f"output) can't be loaded into it. Load the adapter for inference (is_trainable=False)."
            )
        if tuple(matrix.shape) != tuple(self.embedding.weight.shape):
            raise AdapterLoadError(
                f"prompt_embeddings has shape {tuple(matrix.shape)} but the adapter expects "
                f"{tuple(self.embedding.weight.shape)}; it was saved for another base model or num_virtual_tokens."
            )
        with torch.no_grad():
            self.embedding.weight.copy_(matrix.to(self.embedding.weight.device, self.embedding.weight.dtype))


class PromptEncoderDict(nn.ModuleDict):
    """The prompt encoders of all adapters, speaking the adapter-module protocol of `BaseTuner`
    (`set_adapter`, `enable_adapters`, `delete_adapter`, ...) so the shared machinery manages them."""

    def __init__(self) -> None:
        super().__init__()
        self._disable_adapters = False
        self._active_adapter: list[str] = []

    @property
    def disable_adapters(self) -> bool:
        return self._disable_adapters

    @property
    def active_adapters(self) -> list[str]:
        return list(self._active_adapter)

    def has_adapter(self, adapter_name: str) -> bool:
        return adapter_name in self

    def adapter_parameters(self, adapter_name: str) -> Iterator[nn.Parameter]:
        return self[adapter_name].parameters() if adapter_name in self else iter(())

    def set_adapter(self, adapter_names: str | Sequence[str], inference_mode: bool = False) -> None:
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for name, encoder in self.items():
            encoder.requires_grad_(False)
            if name in names and not inference_mode:
                trainable = getattr(encoder, "trainable_parameters", encoder.parameters)
                for param in trainable():
                    param.requires_grad_(True)
        self._active_adapter = [n for n in names if n in self]

    def enable_adapters(self, enabled: bool) -> None:
        self._disable_adapters = not enabled

    def delete_adapter(self, adapter_name: str) -> None:
        if adapter_name in self:
            del self[adapter_name]
        self._active_adapter = [n for n in self._active_adapter if n != adapter_name]

    def cast_adapter_dtype(self, adapter_name: str, autocast: bool = True) -> None:
        """Prompt encoders are kept in fp32 (as in Hugging Face PEFT); half-precision ones are upcast."""
        if not autocast or adapter_name not in self:
            return
        for param in self[adapter_name].parameters():
            if param.dtype in (torch.float16, torch.bfloat16):
                param.data = param.data.float()


# -- reading the base model -------------------------------------------------------------------
