"""Timing and memory measurement for the benchmark suite (no dependency beyond the standard library).

- Every case runs its variants in alternating order (round i starts at variant i mod n), so load
  changes on a shared machine hit all variants alike; one untimed warm-up run per variant comes
  first (one-time costs: lazy imports, the first optimizer's `torch._dynamo` import, allocator
  growth).
- Each timed run reports wall time (`perf_counter`) and CPU time of the process (`process_time`,
  all threads); CPU time is much less disturbed by other processes on a loaded machine.
- Peak memory is the peak resident set size (RSS) above the RSS at the start of the timed
  operation: the kernel's high-water mark `VmHWM` is reset through `/proc/self/clear_refs` before
  the operation and read after it. In the timing process malloc runs with its defaults (memory
  freed by earlier runs is reused, so these deltas are lower bounds); the load-memory case runs
  each measurement in a fresh process with glibc's mmap threshold pinned (`mallopt`), so every
  large allocation is its own mapping and freed tensors leave the RSS at once. Pinning is not
  used for timings: every large allocation would then pay fresh page faults, which inflates
  allocation-heavy code. tracemalloc is not used: it does not see tensor memory (torch allocates
  outside Python's allocator).
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

MIB = 1024 * 1024


def pin_malloc_mmap_threshold(threshold: int = 128 * 1024) -> bool:
    """Disable glibc's growing mmap threshold so freed tensors are returned to the OS at once."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1
        libc.mallopt(M_TRIM_THRESHOLD, threshold)
        return ok
    except OSError:
        return False


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """`with PeakRss() as p: ...` then `p.delta_bytes`: peak RSS during the block above the RSS at its start."""

    def __enter__(self) -> PeakRss:
        self.supported = reset_peak_rss()
        self.start = _status_kib("VmRSS") or 0
        self.delta_bytes: int | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kib("VmHWM")
        if self.supported and peak is not None:
            self.delta_bytes = max(0, peak - self.start) * 1024


# Set by `--profile`: a pyinstrument Profiler, and which variants it records (timings are then inflated).
PROFILER = None
PROFILE_MATCH: Callable[[str], bool] = lambda name: False
# Set by `--op-profile`: which variants to record with torch.profiler (operator table per variant).
OP_PROFILE_MATCH: Callable[[str], bool] = lambda name: False
OP_PROFILES: dict[str, str] = {}


@dataclass
class Sample:
    wall: float
    cpu: float
    peak_bytes: int | None = None


@dataclass
class Variant:
    """One thing to time. `prepare()` (untimed) returns the operation to time; the operation may return
    a `float` to report its own wall time instead (when part of it must stay untimed)."""

    name: str
    prepare: Callable[[], Callable[[], object]]
    samples: list[Sample] = field(default_factory=list)

    def run_once(self, record: bool = True) -> None:
        op = self.prepare()
        profiler = PROFILER if record and PROFILER is not None and PROFILE_MATCH(self.name) else None
        gc.collect()
        gc.disable()
        try:
            with PeakRss() as mem:
                if profiler is not None:
                    profiler.start()
                c0, w0 = time.process_time(), time.perf_counter()
                op()
                w1, c1 = time.perf_counter(), time.process_time()
                if profiler is not None:
                    profiler.stop()
        finally:
            gc.enable()
        if record:
            self.samples.append(Sample(w1 - w0, c1 - c0, mem.delta_bytes))
        if record and OP_PROFILE_MATCH(self.name) and self.name not in OP_PROFILES:
            OP_PROFILES[self.name] = op_table(self.prepare())


def op_table(op: Callable[[], object], rows: int = 12) -> str:
    """torch.profiler's operator table (self CPU time) of one more run of `op` (untimed)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        op()
    return prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows)


def run_alternating(variants: Sequence[Variant], repeats: int, warmup: int = 1) -> None:
    for _ in range(warmup):
        for v in variants:
            v.run_once(record=False)
    n = len(variants)
    for i in range(repeats):
        for j in range(n):
            variants[(i + j) % n].run_once()


@dataclass
class Stats:
    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values), len(values))


def summarise(v: Variant) -> dict:
    peaks = [s.peak_bytes for s in v.samples if s.peak_bytes is not None]
    return {
        "wall_s": asdict(Stats.of([s.wall for s in v.samples])),
        "cpu_s": asdict(Stats.of([s.cpu for s in v.samples])),
        "peak_rss_delta_bytes": statistics.median(peaks) if peaks else None,
        "wall_by_round": [s.wall for s in v.samples],
    }


def paired_ratio(num: Sequence[float] | None, den: Sequence[float] | None) -> float | None:
    """Median over rounds of num[i] / den[i]: both were timed in round i, one right after the other,
    so a burst of load on a shared machine moves both; far steadier than a ratio of medians when
    the machine's speed drifts or jumps during a run. None unless both have the same rounds."""
    if not num or not den or len(num) != len(den):
        return None
    return statistics.median(a / b for a, b in zip(num, den) if b > 0)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def machine_info() -> dict:
    import torch

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": _loadavg(),
    }
    for dist in ("peft", "peft-core", "peft-lora", "transformers", "safetensors"):
        try:
            from importlib.metadata import version

            info[dist] = version(dist)
        except Exception:  # pragma: no cover - not installed
            info[dist] = None
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / MIB:.1f} MiB"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"
