"""Many adapters in one batch (layers/grouped.py): outputs equal per-adapter runs within fp32 rounding,
with groups of unequal sizes, several ranks, base-model rows, DoRA and dropout adapters (which keep the
per-adapter path), on a tiny Llama; and the batched path is really taken."""

from __future__ import annotations

import pytest
import torch
from peft_core import get_peft_model
from peft_core.testing import models
from peft_lora import LoraConfig
from peft_lora.layers import grouped


def _llama() -> torch.nn.Module:
    return models.make_llama(seed=0, vocab_size=64, intermediate_size=48).eval()


def _many(n: int, dora: set[int] = frozenset()) -> torch.nn.Module:
    def config(i: int) -> LoraConfig:
        return LoraConfig(
            target_modules=["q_proj", "v_proj", "down_proj"], r=4 if i % 3 else 8, lora_alpha=8 + i,
            init_lora_weights=False, use_dora=i in dora, task_type="CAUSAL_LM",
        )

    model = get_peft_model(_llama(), config(0), adapter_name="a0")
    for i in range(1, n):
        model.add_adapter(f"a{i}", config(i))
    return model.eval()


def _per_row(model: torch.nn.Module, ids: torch.Tensor, names: list[str]) -> torch.Tensor:
    rows = []
    for row, name in enumerate(names):
        if name == "__base__":
            with model.disable_adapter():
                rows.append(model(input_ids=ids[row : row + 1]).logits)
        else:
            model.set_adapter(name)
            rows.append(model(input_ids=ids[row : row + 1]).logits)
    return torch.cat(rows)


@pytest.fixture
def spy(monkeypatch):
    handled: list[set[str]] = []
    original = grouped.grouped_delta_

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        handled.append(out)
        return out

    monkeypatch.setattr("peft_lora.layers.linear.grouped_delta_", recording)
    return handled


@pytest.mark.parametrize("seq", [1, 5])  # a decode step and a prefill
def test_one_row_per_adapter_equals_per_row_runs(spy, seq):
    model = _many(12)
    names = [f"a{i}" for i in range(12)]
    ids = torch.randint(0, 64, (12, seq))
    with torch.no_grad():
        got = model(input_ids=ids, adapter_names=names).logits
        expected = _per_row(model, ids, names)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert spy and all(h == set(names) for h in spy)  # every layer batched every adapter


def test_unequal_groups_base_rows_and_dora_adapters(spy):
    model = _many(10, dora={2, 7})
    names = ["a0", "a1", "a0", "__base__", "a2", "a3", "a4", "a4", "a5", "a6", "a7", "a8", "a9", "a3", "a1", "a0"]
    ids = torch.randint(0, 64, (len(names), 4))
    with torch.no_grad():
        got = model(input_ids=ids, adapter_names=names).logits
        expected = _per_row(model, ids, names)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert spy and all("a2" not in h and "a7" not in h for h in spy)  # DoRA: the per-adapter path
    assert all({"a5", "a6", "a8", "a9"} <= h for h in spy)  # one row each, ranks 4 and 8: two buckets


def test_few_adapters_keep_the_per_adapter_loop(spy):
    # (the loop has Hugging Face PEFT's mixed-batch bits, checked in test_compat_hf.py)
    model = _many(4)
    names = ["a0", "a1", "a2", "a3"] * 2
    ids = torch.randint(0, 64, (8, 3))
    with torch.no_grad():
        got = model(input_ids=ids, adapter_names=names).logits
        expected = _per_row(model, ids, names)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert spy and all(h == set() for h in spy)


def test_gradients_flow_through_the_batched_path():
    model = _many(9)
    model.base_model.model.train()
    for name, param in model.named_parameters():  # every adapter trainable, not just the active one
        param.requires_grad_("lora_" in name)
    names = [f"a{i}" for i in range(9)]
    ids = torch.randint(0, 64, (9, 2))
    model(input_ids=ids, adapter_names=names).logits.sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n and ".a5." in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_stacked_weights_are_reused_and_refreshed_when_an_adapter_changes():
    model = _many(9)
    names = [f"a{i}" for i in range(9)]
    ids = torch.randint(0, 64, (9, 1))
    layer = model.base_model.model.model.layers[0].self_attn.v_proj  # (one token: q doesn't matter)
    with torch.no_grad():
        first = model(input_ids=ids, adapter_names=names).logits
        cached = dict(layer._grouped_cache)
        assert cached
        again = model(input_ids=ids, adapter_names=names).logits
        assert torch.equal(first, again)
        assert all(layer._grouped_cache[k] is v for k, v in cached.items())  # reused, not restacked
        layer.lora_B["a4"].weight.mul_(3.0)  # an in-place update (e.g. load_state_dict) bumps the version
        changed = model(input_ids=ids, adapter_names=names).logits
        expected = _per_row(model, ids, names)
    assert not torch.allclose(changed[4], first[4])
    torch.testing.assert_close(changed, expected, rtol=1e-5, atol=1e-5)
