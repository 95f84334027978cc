"""Mixed-adapter batches: one adapter name per row, grouped once per forward pass.

`PeftModel.forward(..., adapter_names=[...])` builds a `BatchPlan` and makes it current for the
duration of the call; each adapter layer reads it with `current_batch_plan()` instead of every
layer re-deriving masks from the names.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Callable, Container, Iterator, Sequence

import torch

BASE_ADAPTER_NAME = "__base__"

_CURRENT: contextvars.ContextVar[BatchPlan | None] = contextvars.ContextVar("peft_batch_plan", default=None)


@dataclass
class BatchPlan:
    """Rows grouped by adapter: for each adapter its row indices, or a slice when the rows are contiguous."""

    adapter_names: list[str]
    groups: dict[str, list[int]]
    _index_cache: dict[tuple[str, torch.device], torch.Tensor] = field(default_factory=dict, repr=False)
    _take_cache: dict[str, tuple[torch.Tensor, int, torch.Tensor]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_names(cls, adapter_names: Sequence[str]) -> BatchPlan:
        groups: dict[str, list[int]] = {}
        for row, name in enumerate(adapter_names):
            groups.setdefault(name, []).append(row)
        return cls(list(adapter_names), groups)

    @property
    def batch_size(self) -> int:
        return len(self.adapter_names)

    def rows(self, name: str, device: torch.device) -> torch.Tensor | slice:
        """Rows of `name` as a slice when they are evenly spaced (contiguous, or every k-th row as in
        an interleaved batch: a view, no copy, and `result[rows] += ...` is a plain strided add
        instead of a scatter), else an index tensor on `device`."""
        rows = self.groups[name]
        step = rows[1] - rows[0] if len(rows) > 1 else 1
        if step > 0 and rows[-1] - rows[0] == step * (len(rows) - 1) and all(
            b - a == step for a, b in zip(rows, rows[1:])
        ):
            return slice(rows[0], rows[-1] + 1, step if step > 1 else None)
        key = (name, device)
        index = self._index_cache.get(key)
        if index is None:
            index = torch.tensor(rows, dtype=torch.long, device=device)
            self._index_cache[key] = index
        return index

    def take(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """`x[rows of name]` as a contiguous tensor, copied once per input: layers that read the same
        input tensor (a transformer's q/k/v projections, an MLP's gate/up) share the copy. The copy is
        reused only while `x` is the same, unmodified tensor (identity and version counter)."""
        taken = x[self.rows(name, x.device)]
        if x.is_inference():  # no version counter (torch.inference_mode): in-place changes can't be seen
            return taken.contiguous()
        cached = self._take_cache.get(name)
        if cached is not None and cached[0] is x and cached[1] == x._version:
            return cached[2]
        taken = taken.contiguous()
        self._take_cache[name] = (x, x._version, taken)
        return taken

    def expanded(self, rows: int) -> BatchPlan:
        """The plan for a batch whose rows were repeated `rows // batch_size` times each (generation
        with beams or several return sequences repeats every input row in place)."""
        factor = rows // self.batch_size
        names = [name for name in self.adapter_names for _ in range(factor)]
        return BatchPlan.from_names(names)

    def adapter_groups(self) -> Iterator[str]:
        """Adapter names used in the batch, without the base-model marker."""
        return (name for name in self.groups if name != BASE_ADAPTER_NAME)


def current_batch_plan() -> BatchPlan | None:
    return _CURRENT.get()


@contextlib.contextmanager
def follow_expanded_batches(model: torch.nn.Module, plan: BatchPlan) -> Iterator[None]:
    """While generating, switch to `plan.expanded(...)` whenever `model` is called on repeated rows.

    Encoder-decoder models run their encoder on the original rows (the plan as given) and the
    decoder on the expanded ones; a pre-hook on the top-level model sees the difference.
    """

    def pre_hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        first = next((a for a in (*args, *kwargs.values()) if torch.is_tensor(a) and a.dim() > 0), None)
        rows = first.shape[0] if first is not None else plan.batch_size
        if rows == plan.batch_size:
            _CURRENT.set(plan)
        elif rows % plan.batch_size == 0:
            _CURRENT.set(plan.expanded(rows))

    handle = model.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def batch_plan(adapter_names: Sequence[str] | None) -> Iterator[BatchPlan | None]:
    if adapter_names is None:
        yield None
        return
    plan = BatchPlan.from_names(adapter_names)
    token = _CURRENT.set(plan)
    try:
        yield plan
    finally:
        _CURRENT.reset(token)



def run_per_group(
    plan: BatchPlan,
    x: torch.Tensor,
    run: Callable[[torch.Tensor, list[str]], torch.Tensor],
    held: Container[str],
) -> torch.Tensor:
    """One forward per adapter group, for methods that transform the layer rather than add to it.

    `run(rows_of_x, names)` computes the layer for those rows with the adapters `names` active;
    rows of `__base__`, or of an adapter not in `held`, run with no adapter. While it runs, the
    current plan covers just those rows, so an adapter layer nested inside (a mixed-method model)
    applies that group's adapter to them.
    """
    out: torch.Tensor | None = None
    for name in plan.groups:
        rows = plan.rows(name, x.device)
        names = [name] if name != BASE_ADAPTER_NAME and name in held else []
        group = x[rows]
        token = _CURRENT.set(BatchPlan.from_names([name] * group.shape[0]))
        try:
            y = run(group, names)
        finally:
            _CURRENT.reset(token)
        if out is None:
            out = y.new_empty((x.shape[0], *y.shape[1:]))
        out[rows] = y
    if out is None:
        raise ValueError("Mixed-adapter batch plan has no rows.")
    return out


def update_per_group(
    plan: BatchPlan,
    x: torch.Tensor,
    result: torch.Tensor,
    held: Container[str],
    update: Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor],
    what: str = "an adapter layer",
) -> torch.Tensor:
    """A mixed-adapter batch for methods that change the base output in place of replacing the layer:
    on each group's rows, `update(result_rows, x_rows, name)` of that group's adapter, cast to
    `result`'s dtype.

    Rows of `__base__` or of adapters not in `held` are left as they are; `result` itself is not
    modified (a copy is returned when some group updates). Refuses an input whose first dimension is
    not the batch (the plan can't say which rows are whose), with a ValueError naming `what`.
    """
    groups = [name for name in plan.adapter_groups() if name in held]
    if not groups:
        return result
    if x.shape[0] != plan.batch_size:
        raise ValueError(
            f"Mixed-adapter batch: {what} got an input with {x.shape[0]} rows but adapter_names has "
            f"{plan.batch_size} entries; the adapted layer must see the batch dimension first."
        )
    out = result.clone()
    for name in groups:
        rows = plan.rows(name, x.device)
        out[rows] = update(out[rows], x[rows], name).to(out.dtype)
    return out


def update_adapter_outputs(
    x: torch.Tensor,
    result: torch.Tensor,
    active: Sequence[str],
    held: Container[str],
    update: Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor],
    what: str = "an adapter layer",
) -> torch.Tensor:
    """The forward of an adapter layer that changes its base layer's output (adds to it, rotates it):
    `update(result, x, name)` for every `active` adapter the layer holds (`held`), in turn, or inside a
    mixed-adapter batch, each row's adapter on its rows (`update_per_group`)."""
    plan = current_batch_plan()
    if plan is not None:
        return update_per_group(plan, x, result, held, update, what)
    for name in active:
        if name in held:
            result = update(result, x, name)
    return result


def add_per_group(
    plan: BatchPlan,
    x: torch.Tensor,
    result: torch.Tensor,
    held: Container[str],
    delta: Callable[[torch.Tensor, str], torch.Tensor],
    what: str = "an adapter layer",
) -> torch.Tensor:
    """`update_per_group` for methods that add to the base output: `result` plus, on each group's rows,
    `delta(rows_of_x, name)` of that group's adapter."""
    return update_per_group(plan, x, result, held, lambda out, rows, name: out + delta(rows, name), what)


def add_adapter_deltas(
    x: torch.Tensor,
    result: torch.Tensor,
    active: Sequence[str],
    held: Container[str],
    delta: Callable[[torch.Tensor, str], torch.Tensor],
    what: str = "an adapter layer",
) -> torch.Tensor:
    """The forward of an additive adapter layer after its base layer ran: `result` plus `delta(x, name)`
    of every `active` adapter the layer holds (`held`), or inside a mixed-adapter batch, of each row's
    adapter on its rows. The one place such layers pick between the two."""
    return update_adapter_outputs(x, result, active, held, lambda out, rows, name: out + delta(rows, name), what)
