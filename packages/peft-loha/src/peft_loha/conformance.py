"""LoHa's cases for peft-core's conformance kit (`python -m peft_core.testing loha`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import LoHaConfig

# LoHa's conv layer types: a grouped 3x3 Conv2d, a 1x1 Conv2d, a Conv1d and a Linear head
GROUPED_CONV = models.grouped_conv("grouped-conv", 6, 8, 4, 6)
CONV_TARGETS = GROUPED_CONV.targets


def conformance() -> Conformance:
    return Conformance.of(
        LoHaConfig,
        on(GROUPED_CONV, "conv", r=3, alpha=5, second=dict(r=2, alpha=2, target_modules=["lin", "conv2"])),
        on(GROUPED_CONV, "conv-effective", r=2, alpha=3, use_effective_conv2d=True),
        on(
            models.LLAMA, "llama-patterns", r=4, alpha=8, rank_pattern={"layers.0.self_attn.q_proj": 2}, alpha_pattern={"v_proj": 3},
            exclude_modules=["layers.1.mlp.down_proj"], modules_to_save=["lm_head"],
            second=dict(r=2, target_modules=["v_proj", "o_proj"]),
        ),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"alpha": None}, {"layers_pattern": "layers"}, {"rank_pattern": {"x": -1}}),
    )
