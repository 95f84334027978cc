"""LoKr's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing lokr`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. The cases cover layers whose sizes factorise in different ways (grouped
3x3 Conv2d, 1x1 Conv2d, Conv1d, Linear) with both factors decomposed, with a full `w2` and the
effective-conv form, and Llama with decomposition, exclusions and layer selection.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import LoKrConfig


class KronNet(nn.Module):
    """Layers whose sizes factorise in different ways: grouped 3x3 Conv2d, 1x1 Conv2d, Conv1d, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, 12, 3, padding=1, groups=2)  # out 12 = 3*4, in/groups 2 = 1*2
        self.point = nn.Conv2d(12, 8, 1)  # 8 = 2*4, 12 = 3*4
        self.conv1 = nn.Conv1d(8, 24, 3, padding=1)  # 24 = 4*6, 8 = 2*4
        self.lin = nn.Linear(24 * 16, 10)  # 10 = 2*5, 384 = 16*24

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.point(torch.relu(self.conv2(x))))  # [B, 8, 4, 4]
        h = torch.relu(self.conv1(h.flatten(2)))  # [B, 24, 16]
        return self.lin(h.flatten(1))


KRON_NET = TinyModel("kron-net", KronNet, lambda: {"x": torch.randn(4, 4, 4, 4)})
KRON_TARGETS = ["conv2", "point", "conv1", "lin"]


def conformance() -> Conformance:
    return Conformance(
        method="lokr",
        cases=(
            Case(
                "kron-r1-decompose",
                KRON_NET,
                lambda: LoKrConfig(r=1, alpha=2, decompose_both=True, target_modules=KRON_TARGETS),
                second=lambda: LoKrConfig(r=2, alpha=5, target_modules=["lin", "point"]),
            ),
            # full w2 on the convolutions (effective conv asked for, the full w2 takes precedence);
            # Conv1d gets r=3 (at r=1 Hugging Face PEFT 0.21.2 crashes on Conv1d + effective conv)
            Case(
                "kron-full-w2-effective",
                KRON_NET,
                lambda: LoKrConfig(
                    r=2, alpha=3, use_effective_conv2d=True, rank_pattern={"conv1": 3}, alpha_pattern={"lin": 5},
                    decompose_factor=2, rank_dropout_scale=True, target_modules=KRON_TARGETS,
                ),
            ),
            Case(
                "llama-decompose",
                models.LLAMA,
                lambda: LoKrConfig(
                    r=1, alpha=3, decompose_both=True, decompose_factor=4, target_modules=["q_proj", "v_proj", "up_proj"],
                    exclude_modules=["layers.1.mlp.up_proj"], modules_to_save=["lm_head"], task_type="CAUSAL_LM",
                ),
                second=lambda: LoKrConfig(r=2, target_modules=["v_proj", "o_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"init_weights": "gaussian"}, {"decompose_factor": 2.5}, {"decompose_factor": True},
            {"layers_pattern": ["layers"]},
        ),
    )
