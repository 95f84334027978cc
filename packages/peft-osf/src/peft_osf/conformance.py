"""OSF's cases for peft-core's conformance kit (`python -m peft_core.testing osf`): tall, wide and square
weights (where the frozen high part is or is not stored), fractional and pattern ranks."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import OSFConfig


def conformance() -> Conformance:
    return Conformance.of(
        OSFConfig,
        # lin0 16->32 (tall), lin1 32->32 (square), lin2 32->16 (wide)
        on(models.MLP, second=dict(effective_rank=0.75, rank_pattern={"lin2": 4}, target_modules=["lin1", "lin2"])),
        # On a bf16 base the frozen parts come from the SVD of the rounded weights; where singular values
        # nearly tie (k_proj / v_proj / down_proj of this random Llama) that moves the bf16 output far beyond
        # rounding (the `dtypes` check), so these targets have well-separated splits.
        on(models.LLAMA, effective_rank=0.75, target_modules=["q_proj", "o_proj", "up_proj"]),
        on(models.BERT, "bert-seq-cls", effective_rank=0.9),
        random_init={"init_weights": False},
        hf=True,
        bad_values=(
            {"effective_rank": 0},
            {"effective_rank": -0.5},
            {"rank_pattern": {"lin1": 0}},
            {"rank_pattern": {"(": 4}},  # not a regex
        ),
    )
