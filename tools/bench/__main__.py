"""Benchmarks of peft-core + peft-lora against Hugging Face PEFT (see README.md beside this file).

    uv run --group bench python tools/bench                      # every case, full setting
    uv run --group bench python tools/bench --quick              # tiny models, 2 repeats (smoke run)
    uv run --group bench python tools/bench --cases inject,merge --json out.json
    uv run --group bench python tools/bench --cases train --profile ours   # pyinstrument profile of our runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_harness as h  # noqa: E402
import torch  # noqa: E402

import bench_cases  # noqa: E402
import bench_cases_scale  # noqa: E402
import bench_report  # noqa: E402
import bench_models as m  # noqa: E402

bench_cases.CASES.update(tenants=bench_cases_scale.case_tenants, train_memory=bench_cases_scale.case_train_memory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models and 2 repeats (what `pytest -m bench` runs)")
    parser.add_argument("--cases", default=",".join(bench_cases.CASES), help="comma-separated: " + ", ".join(bench_cases.CASES))
    parser.add_argument("--repeats", type=int, help="timed runs per variant (default: 9 full, 2 quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", metavar="PATH", help="also write the results as Markdown tables to PATH")
    parser.add_argument("--profile", metavar="REGEX", help="profile the variants whose name matches REGEX with pyinstrument "
                        "(timings are then inflated; for finding causes, not for reporting)")
    parser.add_argument("--op-profile", metavar="REGEX", help="print torch.profiler's operator table (by input shape) "
                        "of one extra, untimed run of each variant whose name matches REGEX")
    args = parser.parse_args(argv)

    sizes = m.QUICK if args.quick else m.FULL
    if args.repeats:
        sizes = m.Sizes(**{**sizes.__dict__, "repeats": args.repeats, "import_runs": args.repeats})
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in bench_cases.CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(bench_cases.CASES)}")

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    import warnings

    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    libs = m.libraries()
    info = h.machine_info()
    info["setting"] = "quick" if args.quick else "full"
    info["sizes"] = sizes.__dict__
    print(f"# peft benchmarks ({info['setting']}): {info['date']}, {info['cpu']} x{info['cpus']}, torch {info['torch']} "
          f"(1 thread), peft {info['peft']}, peft-core {info['peft-core']}, peft-lora {info['peft-lora']}, "
          f"load average {info['loadavg_start']}")
    if args.profile:
        from pyinstrument import Profiler

        h.PROFILER = Profiler(interval=0.0005)
        pattern = re.compile(args.profile)
        h.PROFILE_MATCH = lambda name: bool(pattern.search(name))

    if args.op_profile:
        op_pattern = re.compile(args.op_profile)
        h.OP_PROFILE_MATCH = lambda name: bool(op_pattern.search(name))

    results = []
    for case in cases:
        t0 = time.perf_counter()
        load_before = h._loadavg()
        res = bench_cases.CASES[case](sizes, libs)
        res["seconds"] = time.perf_counter() - t0
        res["loadavg"] = {"before": load_before, "after": h._loadavg()}
        results.append(res)
        print_case(res)
        sys.stdout.flush()
    info["loadavg_end"] = h._loadavg()
    print(f"\nload average at the end: {info['loadavg_end']}")

    if args.profile and h.PROFILER is not None:
        print(h.PROFILER.output_text(unicode=False, color=False, show_all=False))
    for name, table in h.OP_PROFILES.items():
        print(f"\n## operators of {name!r} (one untimed run)\n{table}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str) + "\n")
        print(f"results written to {path}")
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bench_report.render({"machine": info, "results": results}))
        print(f"tables written to {path}")
    failed = [r["name"] for res in results for r in res["ratios"] if r.get("met") is False]
    if failed:
        print(f"targets missed: {', '.join(failed)}")
    return 0


def print_case(res: dict) -> None:
    print(f"\n## {res['case']}: {res['title']}  ({res['seconds']:.0f} s, load {res['loadavg']['before']} -> "
          f"{res['loadavg']['after']})")
    print(f"  {'variant':<24} {'wall median':>12} {'wall min-max':>21} {'cpu median':>11} {'peak RSS delta':>15}")
    for name, v in res["variants"].items():
        w, c = v["wall_s"], v["cpu_s"]
        span, extra = bench_report.variant_cells(v)
        print(f"  {name:<24} {h.fmt_time(w['median']):>12} {span:>21} {h.fmt_time(c['median']):>11} "
              f"{h.fmt_bytes(v.get('peak_rss_delta_bytes')):>15}{'  ' + extra if extra else ''}")
    for r in res["ratios"]:
        target = "" if r["target"] is None else f"  target <= {r['target']}: {'met' if r['met'] else 'MISSED'}"
        cpu = "" if r.get("cpu") is None else f" (cpu {r['cpu']:.3f})"
        paired = "" if r.get("paired") is None else f", paired {r['paired']:.3f}"
        print(f"  ratio {r['name']}: {r['wall']:.3f}{cpu}{paired}{target}")
    for note in res.get("notes", []):
        print(f"  note: {note}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
