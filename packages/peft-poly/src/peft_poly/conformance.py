"""Poly's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the kit
also runs against an installed wheel (`python -m peft_core.testing poly`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Every forward call needs `task_ids`, so each case's inputs carry one task per row; the base models ignore
them (transformers models take extra keyword arguments; `TaskMLP` declares the argument). Poly can't
merge (the update depends on each row's task).
"""

from __future__ import annotations

import torch

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import PolyConfig

TASK_IDS = (0, 2, 1, 2)  # one per row of the kit's 4-row inputs


class TaskMLP(models.MLPModule):
    """The kit's MLP, taking (and ignoring) `task_ids` like a model whose adapter routes by task."""

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


def _with_tasks(model: TinyModel, name: str) -> TinyModel:
    return TinyModel(
        name,
        model.factory,
        lambda: {**model.inputs(), "task_ids": torch.tensor(TASK_IDS)},
        requires=model.requires,
    )


MLP_TASKS = TinyModel("mlp-tasks", TaskMLP, lambda: {"x": torch.randn(4, 16), "task_ids": torch.tensor(TASK_IDS)})
LLAMA_TASKS = _with_tasks(models.LLAMA, "llama-tasks")
T5_TASKS = _with_tasks(models.T5, "t5-tasks")


def conformance() -> Conformance:
    return Conformance(
        method="poly",
        cases=(
            # 2-D inputs (Hugging Face PEFT's layer needs [batch, tokens, features]); MHR with 2 splits
            Case(
                "mlp",
                MLP_TASKS,
                lambda: PolyConfig(r=4, n_tasks=3, n_skills=3, n_splits=2, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: PolyConfig(r=2, n_tasks=3, n_skills=2, target_modules=["lin1"]),
                hf=False,
            ),
            Case("llama", LLAMA_TASKS, lambda: PolyConfig(r=4, n_tasks=3, n_skills=4, n_splits=2, task_type="CAUSAL_LM")),
            Case("t5-seq2seq", T5_TASKS, lambda: PolyConfig(r=2, n_tasks=3, n_skills=2, task_type="SEQ_2_SEQ_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        merge=False,
        hf=HuggingFace(),
        bad_values=({"n_tasks": 0}, {"n_skills": -1}, {"n_splits": 0}, {"poly_type": "mhr"}),
    )
