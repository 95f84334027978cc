"""The benchmark cases. Each runs its variants for both libraries (alternating) and returns a result dict:

    {"case", "title", "variants": {name: {wall_s, cpu_s, peak_rss_delta_bytes, ...}},
     "ratios": [{"name", "wall", "cpu", "target", "met"}], "notes": [...]}

Ratios are ratios of medians. A target `<= x` is met when the wall-time ratio is at most x.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

import bench_harness as h
import bench_models as m
from bench_models import PROJECTIONS, Lib, Sizes

HERE = Path(__file__).resolve().parent


def _ratio_entry(name: str, res: dict, num: str, den: str, target: float | None = None, key: str = "median") -> dict:
    """Ratio of medians (`wall`, `cpu`) and the paired ratio (median of per-round ratios, see
    bench_harness.paired_ratio). A target is judged on the paired ratio where there is one."""
    v = res["variants"]
    wall = h.ratio(v[num]["wall_s"][key], v[den]["wall_s"][key])
    cpu = h.ratio(v[num]["cpu_s"][key], v[den]["cpu_s"][key])
    paired = h.paired_ratio(v[num].get("wall_by_round"), v[den].get("wall_by_round"))
    entry = {"name": name, "wall": wall, "cpu": cpu, "paired": paired, "target": target}
    judged = paired if paired is not None else wall
    entry["met"] = None if target is None or judged is None else judged <= target
    return entry


def _collect(case: str, title: str, variants: list[h.Variant], extra: dict[str, dict] | None = None) -> dict:
    out = {"case": case, "title": title, "variants": {}, "ratios": [], "notes": []}
    for v in variants:
        out["variants"][v.name] = {**h.summarise(v), **(extra or {}).get(v.name, {})}
    return out


# -- 1. import ---------------------------------------------------------------------------------------
IMPORT_PROBES = {
    "torch": "import torch",
    "ours": "import torch, peft_core, peft_lora",
    "hf": "import torch, peft",
}
INCREMENT = (
    "import time, torch\n"
    "w, c = time.perf_counter(), time.process_time()\n"
    "import {mods}\n"
    "print(time.perf_counter() - w, time.process_time() - c)\n"
)
INCREMENT_MODS = {"ours (in-process)": "peft_core, peft_lora", "hf (in-process)": "peft"}


def case_import(sizes: Sizes, libs: list[Lib]) -> dict:
    """Fresh interpreters, alternating: whole-process times, and the import measured inside the process
    right after `import torch` (the cost on top of torch without the process-start noise)."""
    runs = sizes.import_runs
    names = list(IMPORT_PROBES) + list(INCREMENT_MODS)
    # Bytecode caching as on a user's machine: the children write and reuse .pyc files (in a private
    # cache folder, so neither the checkout nor site-packages is written to), even where the calling
    # environment sets PYTHONDONTWRITEBYTECODE; otherwise every run compiles every module from source.
    pycache = tempfile.mkdtemp(prefix="peft-bench-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}

    def run(name: str) -> tuple[float, float]:
        if name in IMPORT_PROBES:
            cmd = [sys.executable, "-c", IMPORT_PROBES[name]]
            t0 = os.times()
            w0 = _now()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            t1 = os.times()
            return _now() - w0, (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
        code = INCREMENT.format(mods=INCREMENT_MODS[name])
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
        w, c = out.split()[-2:]
        return float(w), float(c)

    try:
        if runs > 1:
            for n in names:  # warm-up: .pyc files, page cache
                run(n)
        for i in range(runs):
            for j in range(len(names)):
                n = names[(i + j) % len(names)]
                w, c = run(n)
                wall[n].append(w)
                cpu[n].append(c)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    res = {"case": "import", "title": "import cost on top of `import torch` (fresh interpreters)", "variants": {}}
    for n in names:
        res["variants"][n] = {"wall_s": vars(h.Stats.of(wall[n])), "cpu_s": vars(h.Stats.of(cpu[n])),
                              "peak_rss_delta_bytes": None, "wall_by_round": wall[n]}  # round i: every probe's i-th run
    v = res["variants"]
    over = {
        lib: {k: v[lib][k]["median"] - v["torch"][k]["median"] for k in ("wall_s", "cpu_s")} for lib in ("ours", "hf")
    }
    res["over_torch_whole_process"] = over
    ours_inc = v["ours (in-process)"]["wall_s"]["median"]
    res["ratios"] = [
        _ratio_entry("ours/hf (in-process import)", res, "ours (in-process)", "hf (in-process)"),
        {"name": "ours import on top of torch (in-process, s)", "wall": ours_inc,
         "cpu": v["ours (in-process)"]["cpu_s"]["median"], "target": 0.1, "met": ours_inc <= 0.1},
    ]
    res["notes"] = [
        f"whole-process medians: torch {h.fmt_time(v['torch']['wall_s']['median'])}, "
        f"torch+ours {h.fmt_time(v['ours']['wall_s']['median'])} (+{h.fmt_time(over['ours']['wall_s'])}), "
        f"torch+peft {h.fmt_time(v['hf']['wall_s']['median'])} (+{h.fmt_time(over['hf']['wall_s'])}); "
        "differences of whole-process times are noisy on a loaded machine, the in-process rows are the measure",
    ]
    return res


def _now() -> float:
    import time

    return time.perf_counter()


# -- 2. inject ---------------------------------------------------------------------------------------
def case_inject(sizes: Sizes, libs: list[Lib]) -> dict:
    variants: list[h.Variant] = []
    extra: dict[str, dict] = {}
    for depth in sizes.deep_layers:
        for lib in libs:
            for low in (False, True):
                name = f"{lib.name} L{depth}{' low_cpu_mem' if low else ''}"

                def prepare(lib: Lib = lib, depth: int = depth, low: bool = low) -> Callable[[], object]:
                    model = m.deep_model(depth, sizes)
                    return lambda: lib.lora(model, sizes.rank, low_cpu_mem_usage=low)

                variants.append(h.Variant(name, prepare))
                extra[name] = {"targets": 7 * depth}
    h.run_alternating(variants, 3 * sizes.repeats)  # ~0.1 s a run: more runs steady the medians on a noisy machine
    res = _collect("inject", f"get_peft_model, LoRA r={sizes.rank} on all 7 projections of a deep narrow Llama", variants, extra)
    for depth in sizes.deep_layers:
        for low in ("", " low_cpu_mem"):
            res["ratios"].append(_ratio_entry(f"ours/hf L{depth}{low}", res, f"ours L{depth}{low}", f"hf L{depth}{low}", 0.2))
    for name, v in res["variants"].items():
        v["ms_per_target"] = 1000 * v["wall_s"]["median"] / v["targets"]
    lo, hi = sizes.deep_layers[0], sizes.deep_layers[-1]
    for lib in ("ours", "hf"):
        a, b = res["variants"][f"{lib} L{lo}"]["ms_per_target"], res["variants"][f"{lib} L{hi}"]["ms_per_target"]
        res["notes"].append(f"{lib}: {a:.3f} ms/target at {7 * lo} targets, {b:.3f} ms/target at {7 * hi} targets "
                            f"(ratio {b / a:.2f}; 1.00 = linear in the number of targets)")
    return res


# -- 3. train step ------------------------------------------------------------------------------------
def _frozen_base(sizes: Sizes) -> tuple[torch.nn.Module, Callable[[], object]]:
    model = m.mid_model(sizes)
    for p in model.parameters():
        p.requires_grad_(False)
    # gradients flow through every layer (as they must for LoRA), but no weight gets one
    model.get_input_embeddings().register_forward_hook(lambda mod, inp, out: out.requires_grad_(True))
    model.train()
    ids = m.input_ids(sizes, sizes.train_batch)

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()

    return model, step


def _lora_train(lib: Lib, sizes: Sizes) -> tuple[Any, Callable[[], object]]:
    model = lib.lora(m.mid_model(sizes), sizes.rank)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)  # first creation imports torch._dynamo: setup, untimed
    ids = m.input_ids(sizes, sizes.train_batch)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()

    return model, step


def case_train(sizes: Sizes, libs: list[Lib]) -> dict:
    steps: dict[str, Callable[[], object]] = {}
    keep = []
    model, steps["frozen base"] = _frozen_base(sizes)
    keep.append(model)
    for lib in libs:
        model, steps[lib.name] = _lora_train(lib, sizes)
        keep.append(model)
    variants = [h.Variant(name, (lambda s=s: s)) for name, s in steps.items()]
    h.run_alternating(variants, 2 * sizes.repeats, warmup=2)
    title = (f"train step (fwd+bwd+AdamW) LoRA r={sizes.rank} on all projections, Llama hidden {sizes.mid_hidden} "
             f"x{sizes.mid_layers} layers, batch {sizes.train_batch} x seq {sizes.seq}")
    res = _collect("train", title, variants)
    res["ratios"] = [
        _ratio_entry("ours/frozen base", res, "ours", "frozen base", 1.08),
        _ratio_entry("hf/frozen base", res, "hf", "frozen base"),
        _ratio_entry("ours/hf", res, "ours", "hf"),
    ]
    res["notes"].append("frozen base = the same model with every weight frozen and the embedding output requiring "
                        "grad: forward + backward through every layer, no weight gradient, no optimizer step")
    return res


# -- 4. mixed-adapter inference ------------------------------------------------------------------------
def _four_adapters(lib: Lib, sizes: Sizes) -> Any:
    cfg = lambda: lib.config(sizes.rank, init_lora_weights=False)  # noqa: E731 - random A and B: real work
    model = lib.get_peft_model(m.mid_model(sizes), cfg(), adapter_name="a0")
    for i in range(1, 4):
        model.add_adapter(f"a{i}", cfg())
    model.set_adapter("a0")
    model.eval()
    return model


def case_mixed(sizes: Sizes, libs: list[Lib]) -> dict:
    ids = m.input_ids(sizes, sizes.mixed_batch)
    names = [f"a{i % 4}" for i in range(sizes.mixed_batch)]  # interleaved: no group is a contiguous slice
    bare = m.mid_model(sizes).eval()
    ops: dict[str, Callable[[], object]] = {"bare model": lambda: bare(input_ids=ids)}
    keep = [bare]
    for lib in libs:
        model = _four_adapters(lib, sizes)
        keep.append(model)
        ops[f"{lib.name} single"] = lambda model=model: model(input_ids=ids)
        ops[f"{lib.name} mixed"] = lambda model=model: model(input_ids=ids, adapter_names=names)

    def no_grad(op: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            with torch.no_grad():
                op()

        return run

    variants = [h.Variant(name, (lambda op=op: no_grad(op))) for name, op in ops.items()]
    h.run_alternating(variants, sizes.repeats, warmup=2)
    res = _collect("mixed", f"inference, 4 LoRA adapters r={sizes.rank}, batch {sizes.mixed_batch} x seq {sizes.seq}, "
                   f"rows interleaved a0,a1,a2,a3,a0,...", variants)
    res["ratios"] = [
        _ratio_entry("ours mixed/ours single", res, "ours mixed", "ours single", 1.03),
        _ratio_entry("ours single/bare", res, "ours single", "bare model", 1.08),
        _ratio_entry("hf mixed/hf single", res, "hf mixed", "hf single"),
        _ratio_entry("hf single/bare", res, "hf single", "bare model"),
        _ratio_entry("ours mixed/hf mixed", res, "ours mixed", "hf mixed"),
    ]
    return res


# -- 5. merge_and_unload --------------------------------------------------------------------------------
def case_merge(sizes: Sizes, libs: list[Lib]) -> dict:
    variants = []
    deep = sizes.deep_layers[-1]
    for which in ("mid", f"L{deep}"):
        for lib in libs:
            def prepare(lib: Lib = lib, which: str = which) -> Callable[[], object]:
                base = m.mid_model(sizes) if which == "mid" else m.deep_model(deep, sizes)
                model = lib.lora(base, sizes.rank)
                m.randomise_lora(model)
                return model.merge_and_unload

            variants.append(h.Variant(f"{lib.name} {which}", prepare))
    h.run_alternating(variants, 2 * sizes.repeats)
    res = _collect("merge", f"merge_and_unload, LoRA r={sizes.rank} on all projections (mid model; deep narrow "
                   f"L{deep} = {7 * deep} targets)", variants)
    res["ratios"] = [
        _ratio_entry("ours/hf mid", res, "ours mid", "hf mid", 0.5),
        _ratio_entry(f"ours/hf L{deep}", res, f"ours L{deep}", f"hf L{deep}", 0.5),
    ]
    return res


# -- 6. save / load --------------------------------------------------------------------------------------
def case_save_load(sizes: Sizes, libs: list[Lib]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="peft-bench-"))
    try:
        return _save_load(sizes, libs, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_load(sizes: Sizes, libs: list[Lib], tmp: Path) -> dict:
    variants = []
    counter = [0]
    saved: dict[str, Path] = {}
    for lib in libs:
        model = lib.lora(m.mid_model(sizes), sizes.rank)
        m.randomise_lora(model)
        saved[lib.name] = tmp / f"{lib.name}-ref"
        model.save_pretrained(saved[lib.name])

        def prepare_save(model: Any = model, lib: Lib = lib) -> Callable[[], object]:
            counter[0] += 1
            target = tmp / f"{lib.name}-{counter[0]}"
            return lambda: model.save_pretrained(target)

        def prepare_load(lib: Lib = lib) -> Callable[[], object]:
            base = m.mid_model(sizes)
            return lambda: lib.peft_model.from_pretrained(base, saved[lib.name])

        variants += [h.Variant(f"{lib.name} save", prepare_save), h.Variant(f"{lib.name} load", prepare_load)]
    h.run_alternating(variants, 2 * sizes.repeats)
    res = _collect("save_load", f"save_pretrained / from_pretrained (safetensors), LoRA r={sizes.rank} on the mid model",
                   variants)
    v = res["variants"]
    for lib in ("ours", "hf"):
        v[f"{lib} save+load"] = {
            k: {"median": v[f"{lib} save"][k]["median"] + v[f"{lib} load"][k]["median"]} for k in ("wall_s", "cpu_s")
        }
    res["ratios"] = [
        _ratio_entry("ours/hf save", res, "ours save", "hf save"),
        _ratio_entry("ours/hf load", res, "ours load", "hf load"),
        _ratio_entry("ours/hf save+load", res, "ours save+load", "hf save+load", 0.5),
    ]
    res["notes"].append("load = PeftModel.from_pretrained onto a fresh base model (adapter layers created, weights read "
                        "and copied in); each library loads its own files; ours fsyncs every file it writes")
    return res


# -- 6b. peak memory while loading ------------------------------------------------------------------------
def case_load_memory(sizes: Sizes, libs: list[Lib]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="peft-bench-mem-"))
    try:
        saved = {}
        for lib in libs:
            model = lib.lora(m.mid_model(sizes), sizes.load_memory_rank)
            m.randomise_lora(model)
            saved[lib.name] = tmp / lib.name
            model.save_pretrained(saved[lib.name])
            del model
        runs = 1 if sizes.repeats <= 2 else 3
        names = [(lib.name, low) for lib in libs for low in (False, True)]
        samples: dict[str, list[dict]] = {}
        for i in range(runs):
            for j in range(len(names)):
                lib, low = names[(i + j) % len(names)]
                key = f"{lib}{' low_cpu_mem' if low else ''}"
                cmd = [sys.executable, str(HERE / "bench_child.py"), "load-memory", lib, str(saved[lib]),
                       json.dumps(sizes.__dict__), "1" if low else "0"]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                samples.setdefault(key, []).append(json.loads(out.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {"case": "load_memory", "variants": {}, "ratios": [], "notes": [],
           "title": f"peak RSS above the start while PeftModel.from_pretrained runs, LoRA r={sizes.load_memory_rank} on "
                    f"the mid model (fresh process per run)"}
    import statistics

    for key, rows in samples.items():
        peak = statistics.median(r["peak"] for r in rows)
        size = rows[0]["adapter_bytes"]
        res["variants"][key] = {
            "wall_s": vars(h.Stats.of([r["wall"] for r in rows])),
            "cpu_s": vars(h.Stats.of([r["cpu"] for r in rows])),
            "peak_rss_delta_bytes": peak,
            "adapter_bytes": size,
            "peak_over_adapter": peak / size,
        }
        res["ratios"].append({"name": f"{key}: peak / adapter size", "wall": peak / size, "cpu": None,
                              "target": 1.25 if key.startswith("ours") else None,
                              "met": (peak / size <= 1.25) if key.startswith("ours") else None})
    res["notes"].append("1.0 = one copy of the adapter (the adapter's own parameters); 2.0 = the file's tensors held "
                        "next to them. Peak RSS counts file pages mapped by safetensors too.")
    return res


# -- 7. QLoRA: train step on a 4-bit (NF4) base -------------------------------------------------------------
def _nf4_mid_model(sizes: Sizes, folder: Path) -> torch.nn.Module:
    """The mid model loaded through transformers with bitsandbytes NF4 (double quantization, fp32 compute)."""
    import warnings

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, device_map="cpu")
    model.config.use_cache = False
    return model


def _module_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _qlora_train(lib: Lib, sizes: Sizes, folder: Path) -> tuple[Any, Callable[[], object]]:
    import peft

    import peft_core

    prepare = peft_core.prepare_model_for_kbit_training if lib.name == "ours" else peft.prepare_model_for_kbit_training
    base = prepare(_nf4_mid_model(sizes, folder), use_gradient_checkpointing=False)
    torch.manual_seed(0)
    model = lib.lora(base, sizes.rank)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = m.input_ids(sizes, sizes.train_batch)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()

    return model, step


def case_qlora(sizes: Sizes, libs: list[Lib]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="peft-bench-qlora-"))
    try:
        float_model = m.mid_model(sizes)
        float_bytes = _module_bytes(float_model)
        float_model.save_pretrained(tmp)
        del float_model
        steps: dict[str, Callable[[], object]] = {}
        extra: dict[str, dict] = {}
        keep = []
        for lib in libs:
            model, steps[lib.name] = _qlora_train(lib, sizes, tmp)
            keep.append(model)
            extra[lib.name] = {"model_bytes": _module_bytes(model), "float_model_bytes": float_bytes}
        variants = [h.Variant(name, (lambda s=s: s)) for name, s in steps.items()]
        h.run_alternating(variants, 2 * sizes.repeats, warmup=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    title = (f"QLoRA train step (fwd+bwd+AdamW), bitsandbytes NF4 base (double quant, fp32 compute), LoRA r={sizes.rank} "
             f"on all projections, Llama hidden {sizes.mid_hidden} x{sizes.mid_layers} layers, batch "
             f"{sizes.train_batch} x seq {sizes.seq}")
    res = _collect("qlora", title, variants, extra)
    res["ratios"] = [_ratio_entry("ours/hf", res, "ours", "hf")]
    peak = h.ratio(res["variants"]["ours"].get("peak_rss_delta_bytes"), res["variants"]["hf"].get("peak_rss_delta_bytes"))
    if peak is not None:  # None when a step's peak did not rise above its start (tiny quick-setting models)
        res["ratios"].append({"name": "ours peak RSS / hf peak RSS (train step)", "wall": peak, "cpu": None,
                              "target": None, "met": None})
    res["notes"].append("both prepared by their library's prepare_model_for_kbit_training (no gradient checkpointing); "
                        "model bytes = parameters + buffers of the quantized model with the adapter, against the fp32 model")
    return res


CASES: dict[str, Callable[[Sizes, list[Lib]], dict]] = {
    "import": case_import,
    "inject": case_inject,
    "train": case_train,
    "mixed": case_mixed,
    "merge": case_merge,
    "save_load": case_save_load,
    "load_memory": case_load_memory,
    "qlora": case_qlora,
}
