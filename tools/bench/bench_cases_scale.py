"""Cases at scale: many adapters in one batch (multi-tenant serving) and the memory a training step keeps.

Same conventions as bench_cases: both libraries run the same code, alternating, and ratios are
ratios of medians plus the paired ratio (targets are judged on the paired one).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

import bench_harness as h
import bench_models as m
from bench_cases import _collect, _ratio_entry
from bench_models import Lib, Sizes


# -- many adapters per batch ----------------------------------------------------------------------------
def _tenants(lib: Lib, sizes: Sizes, count: int) -> Any:
    cfg = lambda: lib.config(sizes.rank, init_lora_weights=False)  # noqa: E731 - random A and B: real work
    model = lib.get_peft_model(m.mid_model(sizes), cfg(), adapter_name="t0")
    for i in range(1, count):
        model.add_adapter(f"t{i}", cfg())
    model.set_adapter("t0")
    return model.eval()


def _no_grad(op: Callable[[], object]) -> Callable[[], Callable[[], object]]:
    def prepared() -> Callable[[], object]:
        def run() -> None:
            with torch.no_grad():
                op()

        return run

    return prepared


def case_tenants(sizes: Sizes, libs: list[Lib]) -> dict:
    rows, top = sizes.tenant_rows, max(sizes.tenant_counts)
    g = torch.Generator().manual_seed(3)
    decode = torch.randint(0, sizes.vocab, (rows, 1), generator=g)  # one new token per row
    prefill = torch.randint(0, sizes.vocab, (rows, sizes.prefill_tokens), generator=g)
    ops: dict[str, Callable[[], object]] = {}
    keep = []
    for lib in libs:
        for count in sizes.tenant_counts:
            model = _tenants(lib, sizes, count)
            keep.append(model)
            names = [f"t{i % count}" for i in range(rows)]  # interleaved, every adapter used
            if count == min(sizes.tenant_counts):  # one adapter for the whole batch: the reference
                ops[f"{lib.name} decode, 1 adapter"] = lambda model=model: model(input_ids=decode)
                ops[f"{lib.name} prefill, 1 adapter"] = lambda model=model: model(input_ids=prefill)
            ops[f"{lib.name} decode, {count} adapters"] = lambda model=model, names=names: model(
                input_ids=decode, adapter_names=names
            )
            if count == top:
                ops[f"{lib.name} prefill, {count} adapters"] = lambda model=model, names=names: model(
                    input_ids=prefill, adapter_names=names
                )
    variants = [h.Variant(name, _no_grad(op)) for name, op in ops.items()]
    h.run_alternating(variants, sizes.repeats, warmup=2)
    title = (f"many adapters in one batch: {rows} rows, LoRA r={sizes.rank} on all projections, Llama hidden "
             f"{sizes.mid_hidden} x{sizes.mid_layers} layers; decode = 1 token per row, prefill = "
             f"{sizes.prefill_tokens} tokens per row; rows interleaved t0, t1, ...")
    res = _collect("tenants", title, variants)
    ratios = []
    for count in sizes.tenant_counts:
        target = 0.5 if count == top else None
        ratios.append(_ratio_entry(f"ours/hf decode, {count} adapters", res, f"ours decode, {count} adapters",
                                   f"hf decode, {count} adapters", target))
    ratios += [
        _ratio_entry(f"ours/hf prefill, {top} adapters", res, f"ours prefill, {top} adapters",
                     f"hf prefill, {top} adapters", 1.0),
        _ratio_entry(f"ours decode {top} adapters/1 adapter", res, f"ours decode, {top} adapters", "ours decode, 1 adapter"),
        _ratio_entry(f"hf decode {top} adapters/1 adapter", res, f"hf decode, {top} adapters", "hf decode, 1 adapter"),
        _ratio_entry(f"ours prefill {top} adapters/1 adapter", res, f"ours prefill, {top} adapters",
                     "ours prefill, 1 adapter"),
        _ratio_entry(f"hf prefill {top} adapters/1 adapter", res, f"hf prefill, {top} adapters", "hf prefill, 1 adapter"),
    ]
    res["ratios"] = ratios
    res["notes"].append("no KV cache: a decode step is a forward of one token per row (the adapters' work per "
                        "token is the same as with a cache)")
    return res


# -- memory a training step keeps -----------------------------------------------------------------------
def saved_activation_bytes(model: torch.nn.Module, step_loss: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd keeps for backward during the forward pass, each storage counted
    once, parameters excluded (both libraries keep the same weights): the step's activation memory."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step_loss()
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def _training_model(lib: Lib, sizes: Sizes, dropout: float) -> Any:
    model = lib.lora(m.mid_model(sizes), sizes.rank, lora_dropout=dropout)
    m.randomise_lora(model)  # the same adapter weights for both libraries (same names, same order)
    return model.train()


def _gradient_gap(libs: list[Lib], sizes: Sizes, ids: torch.Tensor) -> float:
    """Largest relative difference between the two libraries' adapter gradients (no dropout: the same
    computation), as max |g_ours - g_hf| / max |g_hf| over all adapter weights."""
    grads = []
    for lib in libs:
        model = _training_model(lib, sizes, 0.0)
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n.replace(".default", ""): p.grad for n, p in model.named_parameters() if p.grad is not None})
    ours, theirs = grads
    assert ours.keys() == theirs.keys(), sorted(set(ours) ^ set(theirs))[:4]
    return max(float((ours[n] - theirs[n]).abs().max() / theirs[n].abs().max()) for n in ours)


def case_train_memory(sizes: Sizes, libs: list[Lib]) -> dict:
    dropout = 0.1
    ids = m.input_ids(sizes, sizes.train_batch)
    steps: dict[str, Callable[[], object]] = {}
    extra: dict[str, dict] = {}
    keep = []
    for lib in libs:
        model = _training_model(lib, sizes, dropout)
        keep.append(model)
        loss = lambda model=model: model(input_ids=ids, labels=ids).loss  # noqa: E731
        extra[lib.name] = {"saved_activation_bytes": saved_activation_bytes(model, loss)}

        def step(model: Any = model, loss: Callable[[], torch.Tensor] = loss) -> None:
            model.zero_grad(set_to_none=True)
            loss().backward()

        steps[lib.name] = step
    variants = [h.Variant(name, (lambda s=s: s)) for name, s in steps.items()]
    h.run_alternating(variants, sizes.repeats, warmup=1)
    title = (f"training memory: forward + backward, LoRA r={sizes.rank} (dropout {dropout}) on all 7 projections, "
             f"Llama hidden {sizes.mid_hidden} x{sizes.mid_layers} layers, batch {sizes.train_batch} x seq {sizes.seq}")
    res = _collect("train_memory", title, variants, extra)
    saved = h.ratio(extra["ours"]["saved_activation_bytes"], extra["hf"]["saved_activation_bytes"])
    res["ratios"] = [
        {"name": "ours/hf activation memory kept for backward", "wall": saved, "cpu": None, "target": 0.85,
         "met": None if saved is None else saved <= 0.85},
        _ratio_entry("ours/hf forward+backward time", res, "ours", "hf"),
    ]
    peak = h.ratio(res["variants"]["ours"].get("peak_rss_delta_bytes"), res["variants"]["hf"].get("peak_rss_delta_bytes"))
    if peak is not None:
        res["ratios"].append({"name": "ours/hf peak RSS of the step", "wall": peak, "cpu": None, "target": None, "met": None})
    gap = _gradient_gap(libs, sizes, ids)
    res["notes"].append(f"adapter gradients without dropout: largest relative difference ours vs hf {gap:.2e}")
    res["gradient_gap"] = gap
    return res
