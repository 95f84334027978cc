"""`peft methods`: what the installed method packages provide, and what is wrong with any of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import entry_points


@dataclass
class MethodRow:
    name: str
    peft_type: str
    distribution: str | None
    version: str | None
    entry_point: str
    prefix: str | None
    shares_prefix_with: str | None
    problem: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def collect_methods() -> list[MethodRow]:
    """Every advertised method, each imported on its own; an import or registration error is its `problem`.

    Also reports an entry-point name advertised by more than one distribution (only one of them can win).
    """
    from peft_core import PeftError, installed_methods
    from peft_core.discovery import ENTRY_POINT_GROUP, load_method

    owners: dict[str, list[str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        owners.setdefault(ep.name, []).append(ep.dist.name if ep.dist is not None else "an unknown distribution")
    rows: list[MethodRow] = []
    for info in installed_methods():
        problems: list[str] = []
        prefix = shares = None
        try:
            spec = load_method(info.name)
            prefix, shares = spec.prefix, spec.shares_prefix_with
        except PeftError as exc:
            problems.append(f"{type(exc).__name__}: {_one_line(exc)}")
        except Exception as exc:  # an import error inside the package: report it, keep listing the others
            problems.append(f"import failed: {type(exc).__name__}: {_one_line(exc)}")
        dists = owners.get(info.name, [])
        if len(dists) > 1:
            problems.append(f"conflict: entry point {info.name!r} is advertised by {', '.join(sorted(dists))}")
        rows.append(
            MethodRow(
                name=info.name,
                peft_type=info.name.upper(),
                distribution=info.distribution,
                version=info.version,
                entry_point=info.entry_point,
                prefix=prefix,
                shares_prefix_with=shares,
                problem="; ".join(problems) or None,
            )
        )
    return rows


def format_methods(rows: list[MethodRow]) -> str:
    if not rows:
        return "No methods installed. Install one, e.g. `pip install peft-lora`."
    header = ("method", "distribution", "version", "prefix", "entry point", "status")
    table = [header]
    for r in rows:
        prefix = (r.prefix or "?") + (f" (shared with {r.shares_prefix_with})" if r.shares_prefix_with else "")
        table.append((r.name, r.distribution or "-", r.version or "-", prefix, r.entry_point, "ok" if r.problem is None else "ERROR"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    bad = [r for r in rows if r.problem]
    if bad:
        lines.append("")
        lines += [f"{r.name}: {r.problem}" for r in bad]
    return "\n".join(lines)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
