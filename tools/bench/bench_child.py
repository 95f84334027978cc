"""Measurements that need a fresh process; run by bench_cases, prints one JSON line.

    bench_child.py load-memory <ours|hf> <adapter dir> <sizes json> <low_cpu_mem_usage 0|1>
"""

from __future__ import annotations

import gc
import json
import sys
import time

import bench_harness as h

h.pin_malloc_mmap_threshold()

import torch  # noqa: E402

import bench_models as m  # noqa: E402


def load_memory(lib_name: str, path: str, sizes_json: str, low: str) -> dict:
    torch.set_num_threads(1)
    sizes = m.Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sizes_json).items()})
    lib = m.ours() if lib_name == "ours" else m.hf()
    base = m.mid_model(sizes)
    gc.collect()
    with h.PeakRss() as mem:
        w, c = time.perf_counter(), time.process_time()
        model = lib.peft_model.from_pretrained(base, path, low_cpu_mem_usage=low == "1")
        w, c = time.perf_counter() - w, time.process_time() - c
    size = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" in n)
    return {"peak": mem.delta_bytes, "adapter_bytes": size, "wall": w, "cpu": c}


if __name__ == "__main__":
    if sys.argv[1] == "load-memory":
        print(json.dumps(load_memory(*sys.argv[2:6])))
    else:
        raise SystemExit(f"unknown child command {sys.argv[1]!r}")
