"""C3A's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing c3a`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import C3AConfig


def conformance() -> Conformance:
    return Conformance(
        method="c3a",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: C3AConfig(block_size=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: C3AConfig(block_size=4, target_modules=["lin1"], init_weights="gaussian"),
            ),
            Case(
                "llama",
                models.LLAMA,
                lambda: C3AConfig(
                    block_size=16, block_size_pattern={"v_proj": 8}, target_modules=["q_proj", "v_proj", "down_proj"],
                    task_type="CAUSAL_LM",
                ),
            ),
        ),
        random_init={"init_weights": "xavier_uniform"},
        noop_init={"init_weights": True},
        hf=HuggingFace(),
        bad_values=({"block_size": 0}, {"init_weights": "orthogonal"}, {"bias": "some"},),
    )
