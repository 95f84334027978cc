"""LoHa's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing loha`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. The cases cover Linear, a grouped Conv2d, a 1x1 Conv2d and Conv1d, with
and without `use_effective_conv2d`, and Llama with rank/alpha patterns.
"""

from __future__ import annotations

import torch
from torch import nn

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import LoHaConfig


class GroupedConvNet(nn.Module):
    """A grouped 3x3 Conv2d, a 1x1 Conv2d, a Conv1d and a Linear head (LoHa's conv layer types)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.point = nn.Conv2d(6, 8, 1)
        self.conv1 = nn.Conv1d(8, 4, 3, padding=1)
        self.lin = nn.Linear(4 * 16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.point(torch.relu(self.conv2(x))))  # [B, 8, 4, 4]
        h = torch.relu(self.conv1(h.flatten(2)))  # [B, 4, 16]
        return self.lin(h.flatten(1))


GROUPED_CONV = TinyModel("grouped-conv", GroupedConvNet, lambda: {"x": torch.randn(4, 4, 4, 4)})
CONV_TARGETS = ["conv2", "point", "conv1", "lin"]


def conformance() -> Conformance:
    return Conformance(
        method="loha",
        cases=(
            Case(
                "conv",
                GROUPED_CONV,
                lambda: LoHaConfig(r=3, alpha=5, target_modules=CONV_TARGETS),
                second=lambda: LoHaConfig(r=2, alpha=2, target_modules=["lin", "conv2"]),
            ),
            Case("conv-effective", GROUPED_CONV, lambda: LoHaConfig(r=2, alpha=3, target_modules=CONV_TARGETS, use_effective_conv2d=True)),
            Case(
                "llama-patterns",
                models.LLAMA,
                lambda: LoHaConfig(
                    r=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                    rank_pattern={"layers.0.self_attn.q_proj": 2}, alpha_pattern={"v_proj": 3},
                    exclude_modules=["layers.1.mlp.down_proj"], modules_to_save=["lm_head"], task_type="CAUSAL_LM",
                ),
                second=lambda: LoHaConfig(r=2, target_modules=["v_proj", "o_proj"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=({"alpha": None}, {"layers_pattern": "layers"}, {"rank_pattern": {"x": -1}}),
    )
