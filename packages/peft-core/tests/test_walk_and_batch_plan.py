"""Flat module walks equal torch's; batch plans give evenly spaced rows as strided slices and share
row copies between layers reading the same input."""

from __future__ import annotations

import torch
from peft_core.tuners import walk
from peft_core.tuners.mixed_batch import BatchPlan
from torch import nn


def _tree() -> nn.Module:
    shared = nn.Linear(2, 2)
    root = nn.Sequential(nn.Sequential(shared, nn.ReLU()), nn.ModuleDict({"a": nn.Linear(2, 3), "b": shared}))
    root.register_module("empty", None)
    root.add_module("again", root[0])
    return root


def test_walks_equal_torch_walks():
    root = _tree()
    assert walk.named_modules(root) == list(root.named_modules())
    assert walk.named_modules(root, "p") == list(root.named_modules(prefix="p"))
    assert list(walk.modules(root)) == list(root.modules())
    assert [id(p) for p in walk.parameters(root)] == [id(p) for p in root.parameters()]


def test_rows_are_slices_when_evenly_spaced():
    plan = BatchPlan.from_names(["a", "b", "c", "a", "b", "c", "a", "x", "x", "y", "z", "y", "y"])
    cpu = torch.device("cpu")
    assert plan.rows("a", cpu) == slice(0, 7, 3)
    assert plan.rows("b", cpu) == slice(1, 5, 3)
    assert plan.rows("x", cpu) == slice(7, 9, None)
    assert plan.rows("z", cpu) == slice(10, 11, None)
    assert torch.equal(plan.rows("y", cpu), torch.tensor([9, 11, 12]))
    x = torch.arange(13)
    for name, rows in plan.groups.items():
        assert x[plan.rows(name, cpu)].tolist() == rows


def test_take_copies_once_per_input_and_sees_changes():
    plan = BatchPlan.from_names(["a", "b", "a", "b"])
    x = torch.arange(8.0).view(4, 2)
    first = plan.take(x, "a")
    assert first.is_contiguous() and first.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert plan.take(x, "a") is first
    assert plan.take(x.clone(), "a") is not first  # another tensor
    x.add_(1)  # changed in place: copied again
    assert plan.take(x, "a").tolist() == [[1.0, 2.0], [5.0, 6.0]]
    with torch.inference_mode():
        y = torch.arange(4.0).view(4, 1)
        assert plan.take(y, "b").tolist() == [[1.0], [3.0]]
