"""Markdown tables of a benchmark run (what RESULTS.md quotes), from the runner's result dicts.

    uv run --group bench python tools/bench --json results.json --markdown tables.md
    python tools/bench/bench_report.py results.json          # the tables of a saved run, to stdout
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bench_harness as h


def machine_line(info: dict) -> str:
    return (
        f"{info['date']}, {info['cpu']} x{info['cpus']} (torch threads: {info['torch_threads']}), Python "
        f"{info['python']}, torch {info['torch']}, transformers {info['transformers']}, Hugging Face peft "
        f"{info['peft']}, peft-core {info['peft-core']}, peft-lora {info['peft-lora']}, setting "
        f"`{info['setting']}`, load average {info['loadavg_start']} -> {info.get('loadavg_end')}"
    )


def variant_cells(v: dict) -> tuple[str, str]:
    """The min-max span of a variant's wall times and its case-specific figure (ms per target, peak
    memory over the adapter's size), as the printed report and the tables show them."""
    w = v["wall_s"]
    span = f"{h.fmt_time(w['min'])} - {h.fmt_time(w['max'])}" if "min" in w else ""
    extra = ""
    if "ms_per_target" in v:
        extra = f"{v['ms_per_target']:.3f} ms/target"
    if "peak_over_adapter" in v:
        extra = f"adapter {h.fmt_bytes(v['adapter_bytes'])}, peak/adapter {v['peak_over_adapter']:.2f}"
    if "model_bytes" in v:
        extra = f"model {h.fmt_bytes(v['model_bytes'])} (fp32: {h.fmt_bytes(v['float_model_bytes'])})"
    return span, extra


def case_table(res: dict) -> str:
    lines = [
        f"### {res['case']}: {res['title']}",
        "",
        "| variant | wall median | wall min - max | CPU median | runs | peak RSS delta | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, v in res["variants"].items():
        w, c = v["wall_s"], v["cpu_s"]
        span, extra = variant_cells(v)
        lines.append(
            f"| {name} | {h.fmt_time(w['median'])} | {span} | {h.fmt_time(c['median'])} | {w.get('n', '')} | "
            f"{h.fmt_bytes(v.get('peak_rss_delta_bytes'))} | {extra} |"
        )
    lines += [
        "",
        "| ratio | of wall medians | of CPU medians | paired (median of per-round ratios) | target | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in res["ratios"]:
        cpu = "" if r.get("cpu") is None else f"{r['cpu']:.3f}"
        paired = "" if r.get("paired") is None else f"{r['paired']:.3f}"
        target = "" if r["target"] is None else f"<= {r['target']}"
        verdict = "" if r["met"] is None else ("met" if r["met"] else "**missed**")
        lines.append(f"| {r['name']} | {r['wall']:.3f} | {cpu} | {paired} | {target} | {verdict} |")
    for note in res.get("notes", []):
        lines += ["", f"- {note}"]
    return "\n".join(lines)


def render(data: dict) -> str:
    parts = [f"Run: {machine_line(data['machine'])}."]
    parts += [case_table(res) for res in data["results"]]
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
