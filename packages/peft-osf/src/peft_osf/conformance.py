"""OSF's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the kit
also runs against an installed wheel (`python -m peft_core.testing osf`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Cases cover tall, wide and square weights (where the frozen high part is or is not stored), fractional
and pattern ranks, and Llama's default targets.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import OSFConfig


def conformance() -> Conformance:
    return Conformance(
        method="osf",
        cases=(
            Case(
                "mlp",
                models.MLP,  # lin0 16->32 (tall), lin1 32->32 (square), lin2 32->16 (wide)
                lambda: OSFConfig(target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: OSFConfig(effective_rank=0.75, rank_pattern={"lin2": 4}, target_modules=["lin1", "lin2"]),
            ),
            # On a bf16 base the frozen parts come from the SVD of the rounded weights; where singular values
            # nearly tie (k_proj / v_proj / down_proj of this random Llama) that moves the bf16 output far beyond
            # rounding (the `dtypes` check), so these targets have well-separated splits.
            Case(
                "llama",
                models.LLAMA,
                lambda: OSFConfig(effective_rank=0.75, target_modules=["q_proj", "o_proj", "up_proj"], task_type="CAUSAL_LM"),
            ),
            Case(
                "bert-seq-cls",
                models.BERT,
                lambda: OSFConfig(effective_rank=0.9, target_modules=["query", "value"], task_type="SEQ_CLS"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=(
            {"effective_rank": 0},
            {"effective_rank": -0.5},
            {"rank_pattern": {"lin1": 0}},
            {"rank_pattern": {"(": 4}},  # not a regex
        ),
    )
