"""LN tuning's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing ln_tuning`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. A fresh adapter is a copy of each targeted module, so it starts as a no-op,
has no init switch and keeps the module's dtype. The cases: two LayerNorms of a plain module (with a modules_to_save head),
Llama's RMSNorms plus its embedding and head, and GPT-2's LayerNorms with biases.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import LNTuningConfig


class NormsMLP(nn.Module):
    """Linear layers with a LayerNorm after each of the first two (weights and biases)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(8, 16)
        self.norm0 = nn.LayerNorm(16)
        self.lin1 = nn.Linear(16, 16)
        self.norm1 = nn.LayerNorm(16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm0(torch.relu(self.lin0(x)))
        return self.head(self.norm1(torch.relu(self.lin1(x))))


NORMS_MLP = TinyModel("norms-mlp", NormsMLP, lambda: {"x": torch.randn(4, 8)})


def conformance() -> Conformance:
    return Conformance(
        method="ln_tuning",
        cases=(
            Case(
                "mlp-extras",
                NORMS_MLP,
                lambda: LNTuningConfig(target_modules=["norm0", "norm1"], modules_to_save=["head"]),
                second=lambda: LNTuningConfig(target_modules=["norm1"]),
            ),
            # targeted embeddings also save their base weight (`<emb>.base_layer.weight`), as in HF
            Case(
                "llama-embeddings",
                models.LLAMA,
                lambda: LNTuningConfig(target_modules=["embed_tokens", "lm_head", "norm"], task_type="CAUSAL_LM"),
                second=lambda: LNTuningConfig(target_modules=["post_attention_layernorm"], task_type="CAUSAL_LM"),
            ),
            Case("gpt2-defaults", models.GPT2, lambda: LNTuningConfig(task_type="CAUSAL_LM")),
        ),
        autocast=False,  # the copies keep the base's dtype, as in Hugging Face PEFT
        hf=HuggingFace(),
    )
