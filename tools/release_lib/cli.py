"""Command line of ``tools/release.py``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EXIT_USAGE, ReleaseError
from .proc import git_toplevel

DESCRIPTION = """\
Independent per-package releases for the workspace (see docs/releasing.md).

  plan                      what each package would release next; fails on problems
  bump PKG PART             PART: major|minor|patch|auto|current; uv version + CHANGELOG
  build PKG...|--all        uv build into dist/PKG, verify in a fresh venv, stamp the verified files
  tag PKG                   annotated tag PKG-vVERSION (clean tree, verified build of HEAD)
  publish PKG               uv publish the verified files of the tagged version
  lowest-core PKG|--all     PKG's tests against the lowest peft-core release it admits

exit codes: 0 ok, 1 problems/refused/failed, 2 usage, 3 lowest-core found no release tag to test
"""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                        help="workspace root (default: the git top level of the current directory)")
    p = argparse.ArgumentParser(prog="tools/release.py", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    sp = sub.add_parser("plan", parents=[common], help="per-package release plan and checks")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = sub.add_parser("bump", parents=[common], help="bump one package's version and date its changelog")
    sp.add_argument("package")
    sp.add_argument("part", choices=["major", "minor", "patch", "auto", "current"],
                    help="auto: what the Unreleased entries call for; current: release the current "
                         "(never tagged) version as is, e.g. a first release")
    sp.add_argument("--date", help="release date for the changelog heading (default: today, YYYY-MM-DD)")
    sp.add_argument("--force", action="store_true", help="allow a smaller bump than the entries call for")
    sp.add_argument("--frozen", action="store_true",
                    help="do not re-lock (uv version --frozen); by default uv.lock is updated with --no-sync")

    sp = sub.add_parser("build", parents=[common], help="build wheel+sdist and verify them")
    sp.add_argument("packages", nargs="*", metavar="package")
    sp.add_argument("--all", action="store_true", help="every package (one uv build, verified in parallel)")
    sp.add_argument("--jobs", type=int, help="packages verified at a time (default: the CPU count)")
    sp.add_argument("--python", help="interpreter for the verification venv (uv venv --python)")
    sp.add_argument("--venv", help="reuse (or create) this venv for verification instead of a fresh temp one")
    sp.add_argument("--keep-venv", action="store_true", help="keep the temporary verification venv")
    sp.add_argument("--no-verify", action="store_true", help="only build and check the wheel's file list")

    sp = sub.add_parser("tag", parents=[common], help="create the annotated release tag")
    sp.add_argument("package")
    sp.add_argument("--dry-run", action="store_true", help="only print the tag that would be created")

    sp = sub.add_parser("publish", parents=[common], help="upload the verified files of a tagged release")
    sp.add_argument("package")
    sp.add_argument("--publish-url", help="upload URL (uv publish --publish-url; default: uv's, i.e. PyPI)")
    sp.add_argument("--check-url", help="index URL to skip files already uploaded (uv publish --check-url)")
    sp.add_argument("--dry-run", action="store_true", help="check and print the uv publish command only")

    sp = sub.add_parser("lowest-core", parents=[common],
                        help="run a method package's tests against the lowest peft-core it admits")
    sp.add_argument("package", nargs="?")
    sp.add_argument("--all", action="store_true", help="every package that depends on peft-core")
    sp.add_argument("--python", help="interpreter for the test venv")
    sp.add_argument("--with", dest="extra", action="append", default=[], metavar="REQ",
                    help="extra requirement to install for the tests (repeatable)")
    sp.add_argument("--core-version", help="test against this tagged peft-core version instead of the lowest")
    sp.add_argument("--index", metavar="URL",
                    help="take peft-core from this package index (the lowest version there that the range "
                         "admits) instead of building it from its release tag")
    sp.add_argument("--skip-missing", action="store_true",
                    help="a missing release tag is reported as skipped (exit 0) instead of exit 3")
    sp.add_argument("--pytest-arg", dest="pytest_args", action="append", default=[], metavar="ARG",
                    help="extra argument for pytest (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = (getattr(args, "root", None) or git_toplevel(Path.cwd())).resolve()
        if args.cmd == "plan":
            from .plan import cmd_plan
            return cmd_plan(root, args.json)
        if args.cmd == "bump":
            from .bump import cmd_bump
            return cmd_bump(root, args.package, args.part, date=args.date, force=args.force, frozen=args.frozen)
        if args.cmd == "build":
            from .build import cmd_build
            return cmd_build(root, args.packages, all_pkgs=args.all, python=args.python, venv=args.venv,
                             keep_venv=args.keep_venv, skip_verify=args.no_verify, jobs=args.jobs)
        if args.cmd == "tag":
            from .tag import cmd_tag
            return cmd_tag(root, args.package, dry_run=args.dry_run)
        if args.cmd == "publish":
            from .publish import cmd_publish
            return cmd_publish(root, args.package, publish_url=args.publish_url, check_url=args.check_url,
                               dry_run=args.dry_run)
        if args.cmd == "lowest-core":
            from .lowest_core import cmd_lowest_core
            if args.all and args.package:
                raise ReleaseError("give a package or --all, not both", code=EXIT_USAGE)
            return cmd_lowest_core(root, args.package, all_pkgs=args.all, python=args.python, extra=args.extra,
                                   core_version=args.core_version, skip_missing=args.skip_missing,
                                   index=args.index,
                                   pytest_args=args.pytest_args)
    except ReleaseError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    raise AssertionError(args.cmd)
