"""LoKr's cases for peft-core's conformance kit (`python -m peft_core.testing lokr`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import LoKrConfig

# sizes that factorise in different ways: conv2 out 12 = 3*4 (in/groups 2 = 1*2), point 8 = 2*4 (in 12 = 3*4),
# conv1 24 = 4*6 (in 8 = 2*4), lin 10 = 2*5 (in 384 = 16*24)
KRON_NET = models.grouped_conv("kron-net", 12, 8, 24, 10)
KRON_TARGETS = KRON_NET.targets


def conformance() -> Conformance:
    return Conformance.of(
        LoKrConfig,
        on(KRON_NET, "kron-r1-decompose", r=1, alpha=2, decompose_both=True, second=dict(r=2, alpha=5, target_modules=["lin", "point"])),
        # full w2 on the convolutions (effective conv asked for, the full w2 takes precedence);
        # Conv1d gets r=3 (at r=1 Hugging Face PEFT 0.21.2 crashes on Conv1d + effective conv)
        on(
            KRON_NET, "kron-full-w2-effective", r=2, alpha=3, use_effective_conv2d=True, rank_pattern={"conv1": 3},
            alpha_pattern={"lin": 5}, decompose_factor=2, rank_dropout_scale=True,
        ),
        on(
            models.LLAMA, "llama-decompose", r=1, alpha=3, decompose_both=True, decompose_factor=4,
            target_modules=["q_proj", "v_proj", "up_proj"], exclude_modules=["layers.1.mlp.up_proj"], modules_to_save=["lm_head"],
            second=dict(r=2, target_modules=["v_proj", "o_proj"]),
        ),
        random_init={"init_weights": False},
        hf=True,
        bad_values=(
            {"init_weights": "gaussian"}, {"decompose_factor": 2.5}, {"decompose_factor": True},
            {"layers_pattern": ["layers"]},
        ),
    )
