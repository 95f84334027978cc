"""`python -m peft_core.testing METHOD [...]`: run the conformance kit on installed methods.

Exits 1 if a check failed. `--json` prints the reports as JSON (for release tooling).
"""

from __future__ import annotations

import argparse
import json
import sys

from .runner import CHECKS, run_conformance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peft_core.testing", description=__doc__)
    parser.add_argument("methods", nargs="+", help="method names (their packages declare peft.conformance entry points)")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(CHECKS), help="a check to leave out")
    parser.add_argument("--no-hf", action="store_true", help="skip the Hugging Face PEFT comparisons")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args(argv)
    reports = [run_conformance(m, skip=args.skip, hf=False if args.no_hf else "auto") for m in args.methods]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports]))
    else:
        for report in reports:
            print(report.summary())
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
