"""CPT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the kit also
runs against an installed wheel (`python -m peft_core.testing cpt`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
CPT is for causal language models only. Like every prompt-learning method it can't merge and refuses
mixed-adapter batches; its start (the context's embeddings) is never a no-op. Hugging Face PEFT projects the
stored correction again when it saves, so its files equal its outputs only up to rounding: compared with the
cases' tolerance.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import CPTConfig


def conformance() -> Conformance:
    return Conformance(
        method="cpt",
        cases=(
            Case(
                "llama-context",
                models.LLAMA,
                # one example: input template, input, output template, label; then a second input template
                lambda: CPTConfig(
                    task_type="CAUSAL_LM", cpt_token_ids=[5, 17, 9, 42, 6], cpt_tokens_type_mask=[1, 2, 3, 4, 5],
                    cpt_mask=[1, 1, 1, 1, 1],
                ),
                second=lambda: CPTConfig(task_type="CAUSAL_LM", cpt_token_ids=[3, 4], opt_projection_epsilon=0.5),
            ),
            Case("llama-default", models.LLAMA, lambda: CPTConfig(task_type="CAUSAL_LM")),
        ),
        random_init={},
        noop_init=None,
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(exact=False),
        bad_values=(
            {"task_type": "SEQ_CLS"},
            {"cpt_tokens_type_mask": [1, 2]},  # not one per context token
            {"cpt_token_ids": [-1]},
            {"opt_weighted_loss_type": "linear"},
            {"opt_projection_epsilon": -0.1},
            {"opt_loss_decay_factor": 0.0},
        ),
    )
