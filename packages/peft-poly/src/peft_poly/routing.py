"""The task router and the task ids of the call being run.

`PolyRouter` holds per-task logits over `n_splits x n_skills`; in evaluation the mix is the sigmoid of
the logits normalised over the skills, in training a relaxed-Bernoulli sample of them (a stochastic,
differentiable skill selection), normalised the same way.

`task_ids` reach the layers through a context variable set by `PolyModel.forward` / `generate`, so
they need not be threaded through the base model's own forward signature.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
from torch import nn
from torch.distributions.relaxed_bernoulli import RelaxedBernoulli

from peft_core import PeftError

EPS = 1e-12
_TASK_IDS: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("peft_poly_task_ids", default=None)


class TaskIdsError(PeftError, ValueError):
    """`task_ids` are missing, out of range, or do not fit the batch."""


@contextlib.contextmanager
def using_task_ids(task_ids: torch.Tensor | None) -> Iterator[None]:
    if task_ids is not None and not torch.is_tensor(task_ids):
        task_ids = torch.as_tensor(task_ids)
    token = _TASK_IDS.set(task_ids)
    try:
        yield
    finally:
        _TASK_IDS.reset(token)


def current_task_ids() -> torch.Tensor | None:
    return _TASK_IDS.get()


def task_ids_for_rows(rows: int, n_tasks: int) -> torch.Tensor:
    """The current task ids, one per row of a batch of `rows` (repeated in place when generation
    expanded every row, e.g. for beam search). An adapter with a single task needs none: every row
    is task 0 (Hugging Face PEFT insists on them even then)."""
    task_ids = _TASK_IDS.get()
    if task_ids is None and n_tasks == 1:
        return torch.zeros(rows, dtype=torch.long)
    if task_ids is None:
        raise TaskIdsError(
            "Poly needs task_ids: pass one task index per row, e.g. model(input_ids, task_ids=torch.tensor([0, 2]))."
        )
    task_ids = task_ids.reshape(-1)
    if task_ids.numel() == rows:
        return task_ids
    if task_ids.numel() and rows % task_ids.numel() == 0:
        return task_ids.repeat_interleave(rows // task_ids.numel())
    raise TaskIdsError(f"task_ids has {task_ids.numel()} entries but the batch has {rows} rows; give one per row.")


class PolyRouter(nn.Module):
    """Per-task logits `module_logits [n_tasks, n_splits * n_skills]` -> skill weights `[batch, n_splits, n_skills]`."""

    def __init__(self, n_tasks: int, n_skills: int, n_splits: int) -> None:
        super().__init__()
        self.n_tasks, self.n_skills, self.n_splits = n_tasks, n_skills, n_splits
        self.module_logits = nn.Parameter(torch.empty((n_tasks, n_splits * n_skills)))

    def reset(self) -> None:
        if not self.module_logits.is_meta:
            nn.init.uniform_(self.module_logits, -1e-3, 1e-3)

    def forward(self, task_ids: torch.Tensor) -> torch.Tensor:
        if task_ids.is_floating_point() or task_ids.dtype == torch.bool:
            raise TaskIdsError(f"task_ids must be integers, got {task_ids.dtype}.")
        if task_ids.numel() and (int(task_ids.max()) >= self.n_tasks or int(task_ids.min()) < 0):
            raise TaskIdsError(
                f"Only {self.n_tasks} tasks available (task ids 0..{self.n_tasks - 1}); found task id "
                f"{int(task_ids.max()) if int(task_ids.max()) >= self.n_tasks else int(task_ids.min())}."
            )
        logits = self.module_logits[task_ids.to(self.module_logits.device)].view(-1, self.n_splits, self.n_skills)
        if self.training:
            logits = RelaxedBernoulli(temperature=1.0, logits=logits).rsample()
        else:
            logits = torch.sigmoid(logits)
        return logits / (logits.sum(dim=-1, keepdim=True) + EPS)
