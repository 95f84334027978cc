"""Mixed-adapter batches: `model(x, adapter_names=[...])` equals running each row with its adapter alone."""

from __future__ import annotations

import copy
import time
import warnings

import pytest
import torch
from _lora_test_models import MIXED_BATCH_CASES, emb_mlp, input_ids, logits, randomize_lora, tiny_llama
from peft_core import BASE_ADAPTER_NAME, get_peft_model
from peft_core.testing import models
from peft_lora import LoraConfig


def _model(make, targets, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(make(), LoraConfig(r=4, target_modules=targets, **extra))
        model.add_adapter("b", LoraConfig(r=2, lora_alpha=4, target_modules=targets, use_dora=True))
        model.add_adapter("c", LoraConfig(r=3, target_modules=targets[:1]))
    randomize_lora(model)
    return model.eval()


def _per_row(model, inputs, names):
    rows = []
    for i, name in enumerate(names):
        row = inputs[i : i + 1]
        if name == BASE_ADAPTER_NAME:
            with model.disable_adapter():
                rows.append(logits(model, row))
        else:
            model.set_adapter(name)
            rows.append(logits(model, row))
    model.set_adapter("default")
    return torch.cat(rows)


@pytest.mark.parametrize("make, targets, make_inputs", MIXED_BATCH_CASES)
@pytest.mark.parametrize(
    "names",
    [
        ["default", "default", "b", "b", "__base__", "c"],  # contiguous groups: slices
        ["b", "default", "__base__", "b", "c", "default"],  # interleaved: index tensors
        ["c"] * 6,
    ],
)
def test_mixed_batch_equals_single_adapter_runs(make, targets, make_inputs, names):
    model = _model(make, targets)
    inputs = make_inputs(batch=len(names))
    mixed = logits(model, inputs, adapter_names=names)
    torch.testing.assert_close(mixed, _per_row(model, inputs, names), atol=1e-6, rtol=1e-6)


def test_mixed_batch_with_modules_to_save_and_generate():
    model = _model(tiny_llama, ["q_proj", "v_proj"], modules_to_save=["lm_head"], task_type="CAUSAL_LM")
    names = ["b", "__base__", "default"]
    ids = input_ids(batch=3)
    torch.testing.assert_close(
        logits(model, ids, adapter_names=names), _per_row(model, ids, names), atol=1e-6, rtol=1e-6
    )
    out = model.generate(input_ids=ids, adapter_names=names, max_new_tokens=4, do_sample=False)
    for i, name in enumerate(names):
        if name == "__base__":
            with model.disable_adapter():
                single = model.generate(input_ids=ids[i : i + 1], max_new_tokens=4, do_sample=False)
        else:
            model.set_adapter(name)
            single = model.generate(input_ids=ids[i : i + 1], max_new_tokens=4, do_sample=False)
        assert torch.equal(out[i : i + 1], single)


def test_mixed_batch_errors():
    model = _model(emb_mlp, ["lin0", "lin1"])
    ids = input_ids(batch=2)
    with pytest.raises(ValueError, match="unknown adapters"):
        model(ids, adapter_names=["default", "nope"])
    with pytest.raises(ValueError, match="one adapter name per row"):
        model(ids, adapter_names=["default"])
    model.train()
    with pytest.raises(ValueError, match="eval mode"):
        model(ids, adapter_names=["default", "b"])
    model.eval()
    model.merge_adapter()
    with pytest.raises(ValueError, match="unmerged"):
        model(ids, adapter_names=["default", "b"])


def _timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.bench
def test_mixed_batch_costs_about_one_forward():
    """Mixed batch (3 adapters + base, interleaved rows) vs. one adapter for the whole batch; prints timings.

    Also times Hugging Face PEFT's mixed batch on the same model when `peft` is installed.
    """
    sizes = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4)
    base = models.make_llama(seed=0, vocab_size=512, **sizes).eval()
    model = get_peft_model(copy.deepcopy(base), LoraConfig(r=8, target_modules="all-linear"))
    for name in ("b", "c"):
        model.add_adapter(name, LoraConfig(r=8, target_modules="all-linear"))
    model.eval()
    ids = torch.randint(0, 512, (16, 64))
    names = ["default", "b", "c", "__base__"] * 4
    grouped = sorted(names)
    with torch.no_grad():
        single = _timed(lambda: model(ids), 7)
        mixed = _timed(lambda: model(ids, adapter_names=names), 7)
        mixed_grouped = _timed(lambda: model(ids, adapter_names=grouped), 7)
    report = (
        f"\nsingle adapter {single * 1e3:.1f} ms; mixed interleaved {mixed * 1e3:.1f} ms (x{mixed / single:.2f}); "
        f"mixed grouped {mixed_grouped * 1e3:.1f} ms (x{mixed_grouped / single:.2f})"
    )
    try:
        import peft
    except ImportError:
        peft = None
    if peft is not None:
        hf = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=8, target_modules="all-linear"))
        for name in ("b", "c"):
            hf.add_adapter(name, peft.LoraConfig(r=8, target_modules="all-linear"))
        hf.eval()
        with torch.no_grad():
            hf_single = _timed(lambda: hf(ids), 7)
            hf_mixed = _timed(lambda: hf(ids, adapter_names=names), 7)
        report += (
            f"; HF peft {peft.__version__}: single {hf_single * 1e3:.1f} ms, mixed {hf_mixed * 1e3:.1f} ms "
            f"(x{hf_mixed / hf_single:.2f})"
        )
    print(report)
    assert mixed < 2.0 * single
