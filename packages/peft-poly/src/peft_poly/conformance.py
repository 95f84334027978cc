"""Poly's cases for peft-core's conformance kit (`python -m peft_core.testing poly`): the kit's models with a task
id per input row."""

from __future__ import annotations

import torch

from peft_core.testing import Conformance, models, on

from .config import PolyConfig

TASK_IDS = torch.tensor([0, 2, 1, 2])  # one per row of the kit's 4-row inputs


class TaskMLP(models.MLPModule):
    """The kit's MLP, taking (and ignoring) `task_ids` like a model whose adapter routes by task."""

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


MLP_TASKS = models.MLP.variant("mlp-tasks", factory=TaskMLP, task_ids=TASK_IDS)
LLAMA_TASKS = models.LLAMA.variant("llama-tasks", task_ids=TASK_IDS)
T5_TASKS = models.T5.variant("t5-tasks", task_ids=TASK_IDS)


def conformance() -> Conformance:
    return Conformance.of(
        PolyConfig,
        # 2-D inputs (Hugging Face PEFT's layer needs [batch, tokens, features]); MHR with 2 splits
        on(
            MLP_TASKS, "mlp", r=4, n_tasks=3, n_skills=3, n_splits=2,
            second=dict(r=2, n_tasks=3, n_skills=2, target_modules=["lin1"]), hf=False,
        ),
        on(LLAMA_TASKS, "llama", r=4, n_tasks=3, n_skills=4, n_splits=2, target_modules=None),
        on(T5_TASKS, "t5-seq2seq", r=2, n_tasks=3, n_skills=2, target_modules=None),
        random_init={"init_weights": False},
        merge=False,
        hf=True,
        bad_values=({"n_tasks": 0}, {"n_skills": -1}, {"n_splits": 0}, {"poly_type": "mhr"}),
    )
