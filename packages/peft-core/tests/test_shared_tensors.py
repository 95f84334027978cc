"""The helpers for tensors an adapter shares across its layers (held by the tuner, sliced per layer)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from peft_core import BaseTunerLayer
from peft_core.tuners.buffers import BufferDict
from peft_core.tuners.shared_tensors import largest_features, on_base_weight, sliced_shared


def _layer(base: nn.Linear) -> BaseTunerLayer:
    layer = BaseTunerLayer(base)
    layer.in_features, layer.out_features = base.in_features, base.out_features
    return layer


def test_largest_features_takes_each_maximum_separately():
    assert largest_features([_layer(nn.Linear(3, 7)), _layer(nn.Linear(5, 2))]) == (5, 7)


def test_on_base_weight_follows_a_float_base_and_leaves_meta_alone():
    a, b = torch.ones(2, 3), torch.zeros(3, 2)
    moved = on_base_weight(_layer(nn.Linear(3, 3).to(torch.float16)), a, b)
    assert [t.dtype for t in moved] == [torch.float16, torch.float16]
    with torch.device("meta"):
        meta = nn.Linear(3, 3)
    assert on_base_weight(_layer(meta), a, b) == (a, b)


def test_sliced_shared_cuts_each_layers_part_and_refuses_once_unloaded():
    store_a, store_b = BufferDict(), BufferDict()
    store_a.set("x", torch.arange(12.0).reshape(2, 6))
    store_b.set("x", torch.arange(10.0).reshape(5, 2))
    like = torch.zeros(1, dtype=torch.float64)
    a, b = sliced_shared(store_a, store_b, "x", 4, 3, like, "Toy")
    assert a.shape == (2, 4) and b.shape == (3, 2) and a.dtype == b.dtype == torch.float64
    assert torch.equal(a, store_a["x"][:, :4].double())
    with pytest.raises(RuntimeError, match="Toy adapter 'y' has no shared projections.*Re-create"):
        sliced_shared(store_a, store_b, "y", 4, 3, like, "Toy")
