"""CPT's cases for peft-core's conformance kit (`python -m peft_core.testing cpt`)."""

from __future__ import annotations

from peft_core.testing import Conformance, HuggingFace, models, on

from .config import CPTConfig


def conformance() -> Conformance:
    return Conformance.of(
        CPTConfig,
        # one example: input template, input, output template, label; then a second input template
        on(
            models.LLAMA, "llama-context", cpt_token_ids=[5, 17, 9, 42, 6], cpt_tokens_type_mask=[1, 2, 3, 4, 5],
            cpt_mask=[1, 1, 1, 1, 1], second=dict(cpt_token_ids=[3, 4], opt_projection_epsilon=0.5),
        ),
        on(models.LLAMA, "llama-default"),
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
