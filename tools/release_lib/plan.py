"""``plan``: what each package would release next, and the checks that gate a release."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from . import changelog as cl
from .gitinfo import changed_files, last_release, show_file
from .workspace import (
    CORE_DIST,
    PLUGIN_API_FILE,
    PLUGIN_API_NAME,
    Package,
    core_package,
    discover,
    plugin_api_version,
    read_plugin_api_version,
)

CMD = "uv run tools/release.py"


@dataclass
class Finding:
    package: str | None
    message: str

    def to_json(self) -> dict:
        return {"package": self.package, "message": self.message}


@dataclass
class PackagePlan:
    pkg: Package
    last_tag: str | None = None
    last_version: Version | None = None
    changed: bool = True
    changed_files: list[str] = field(default_factory=list)
    has_changelog: bool = False
    entries: list[cl.Entry] = field(default_factory=list)
    level: str | None = None
    bump: str | None = None  # "major" | "minor" | "patch" | "current" (first release) | None
    next_version: str | None = None
    state: str = ""
    action: str = ""
    core_in_range: bool | None = None

    def to_json(self) -> dict:
        p = self.pkg
        return {
            "name": p.name,
            "dist": p.dist,
            "path": p.rel,
            "import_name": p.import_name,
            "version": p.version,
            "is_core": p.is_core,
            "is_method": p.is_method,
            "kind": p.kind,  # how `build` verifies it: core, method, app (declared commands) or unknown
            "last_tag": self.last_tag,
            "last_version": str(self.last_version) if self.last_version else None,
            "changed": self.changed,
            "changed_files": self.changed_files,
            "unreleased": [e.to_json() for e in self.entries],
            "bump_level": self.level,
            "bump": self.bump,
            "next_version": self.next_version,
            "state": self.state,
            "action": self.action,
            "core_requirement": p.core_requirement_text,
            "core_in_range": self.core_in_range,
            "plugin_api": [{"file": d.file, "line": d.line, "spec": d.spec} for d in p.plugin_api],
            "entry_points": p.entry_points,
        }


@dataclass
class Plan:
    root: Path
    packages: list[PackagePlan]
    problems: list[Finding]
    warnings: list[Finding]
    core_version: str | None
    plugin_api_version: int | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def for_package(self, name: str) -> PackagePlan:
        for pp in self.packages:
            if pp.pkg.name == name:
                return pp
        raise KeyError(name)

    def problems_of(self, name: str) -> list[Finding]:
        return [f for f in self.problems if f.package == name]

    def to_json(self) -> dict:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "core_version": self.core_version,
            "plugin_api_version": self.plugin_api_version,
            "packages": [pp.to_json() for pp in self.packages],
            "problems": [f.to_json() for f in self.problems],
            "warnings": [f.to_json() for f in self.warnings],
        }


def suggest_core_range(req_spec: SpecifierSet, core: Version) -> str:
    """A range that keeps the declared lower bound and admits ``core`` up to its next
    breaking release (next minor for 0.x, next major from 1.0)."""
    lower = [str(s) for s in req_spec if s.operator in (">=", ">", "~=", "==")]
    if not lower or any(s.startswith(("==", "~=")) for s in lower):
        lower = [f">={core.major}.{core.minor}"]
    upper = f"<{core.major}.{core.minor + 1}" if core.major == 0 else f"<{core.major + 1}"
    return f"{CORE_DIST}{','.join(lower + [upper])}"


def _plan_package(root: Path, pkg: Package, problems: list[Finding], warnings: list[Finding]) -> PackagePlan:
    pp = PackagePlan(pkg)
    name = pkg.name
    for msg in pkg.load_problems:
        problems.append(Finding(name, f"{pkg.rel}: {msg}"))
    for msg in pkg.load_warnings:
        warnings.append(Finding(name, msg))

    # changelog
    if pkg.changelog_path.is_file():
        log = cl.Changelog.read(pkg.changelog_path)
        pp.has_changelog = log.has_unreleased
        if not log.has_unreleased:
            problems.append(Finding(name, (
                f"{pkg.rel}/CHANGELOG.md has no '## [Unreleased]' section. Fix: add one above the "
                "released versions; new entries go there under '### Added', '### Fixed', ..."
            )))
        unreleased = log.unreleased()
        pp.entries = unreleased.entries
        for sec in unreleased.unknown_sections():
            warnings.append(Finding(name, (
                f"{pkg.rel}/CHANGELOG.md: unknown Unreleased category '### {sec}' (counted as minor); "
                f"use one of {', '.join(cl.KNOWN_SECTIONS)}"
            )))
        if unreleased.uncategorized:
            warnings.append(Finding(name, (
                f"{pkg.rel}/CHANGELOG.md: {len(unreleased.uncategorized)} Unreleased entr"
                f"{'y is' if len(unreleased.uncategorized) == 1 else 'ies are'} not under a '### ...' "
                "category (counted as minor)"
            )))
    else:
        log = None
        problems.append(Finding(name, (
            f"{pkg.rel} has no CHANGELOG.md. Fix: create it (Keep a Changelog format) with a "
            "'## [Unreleased]' section"
        )))

    version = pkg.parsed_version
    last = last_release(root, pkg)
    if last:
        pp.last_version, pp.last_tag = last
        pp.changed_files = changed_files(root, pp.last_tag, pkg)
        pp.changed = bool(pp.changed_files)
    else:
        pp.changed = True  # never tagged: everything is new

    pp.level = cl.bump_level(pp.entries)
    if version is None:
        pp.state = "invalid version"
        return pp

    if last is None:
        pp.state = "never released"
        pp.bump = "current"
        pp.next_version = str(version)
        if pp.entries:
            pp.action = f"{CMD} bump {pkg.dist} current  (first release as {version})"
        elif log is not None and log.has_version(version):
            pp.action = f"{CMD} build {pkg.dist} && {CMD} tag {pkg.dist}"
        else:
            pp.action = (f"add an Unreleased entry (e.g. '### Added' / '- First release'), "
                         f"then {CMD} bump {pkg.dist} current")
        return pp

    assert pp.last_version is not None
    if version < pp.last_version:
        pp.state = "version behind tag"
        problems.append(Finding(name, (
            f"{pkg.rel} is at version {version} but it was already released as {pp.last_version} "
            f"(tag {pp.last_tag}). Fix: set the version back to at least {pp.last_version} in "
            f"{pkg.rel}/pyproject.toml (uv version --package {pkg.dist} {pp.last_version} --frozen)"
        )))
        return pp

    if version > pp.last_version:
        pp.state = "bumped, not tagged"
        pp.next_version = str(version)
        pp.action = f"{CMD} build {pkg.dist} && {CMD} tag {pkg.dist}"
        if log is not None and not log.has_version(version):
            warnings.append(Finding(name, (
                f"{pkg.rel} was bumped to {version} but CHANGELOG.md has no '## [{version}]' "
                f"section; `tag` will refuse. Fix: add the section (bump does this for you)"
            )))
        return pp

    # version == last released version
    if pp.entries:
        pp.bump = cl.bump_part(pp.level, version)
        assert pp.bump is not None
        pp.next_version = str(cl.next_version(version, pp.bump))
        pp.state = "needs release"
        pp.action = f"{CMD} bump {pkg.dist} {pp.bump}"
    elif pp.changed:
        pp.state = "changed, no changelog"
        shown = ", ".join(pp.changed_files[:5]) + (" ..." if len(pp.changed_files) > 5 else "")
        problems.append(Finding(name, (
            f"{pkg.rel} changed since {pp.last_tag} ({len(pp.changed_files)} file"
            f"{'' if len(pp.changed_files) == 1 else 's'}: {shown}) but its CHANGELOG.md has no "
            f"'## [Unreleased]' entries. Fix: describe the change in {pkg.rel}/CHANGELOG.md under "
            "'## [Unreleased]' ('### Fixed' for a fix, '### Added'/'### Changed' for features, "
            "'### Removed' or a 'BREAKING' entry for breaking changes)"
        )))
    else:
        pp.state = "up to date"
    return pp


def _check_core_ranges(pkgs: list[Package], plans: dict[str, PackagePlan], problems: list[Finding],
                       warnings: list[Finding]) -> None:
    core = core_package(pkgs)
    core_version = core.parsed_version if core else None
    for pkg in pkgs:
        req = pkg.core_requirement
        if req is None:
            continue
        sources = pkg.pyproject.get("tool", {}).get("uv", {}).get("sources", {})
        if not (isinstance(sources.get(CORE_DIST), dict) and sources[CORE_DIST].get("workspace")):
            warnings.append(Finding(pkg.name, (
                f"{pkg.rel}/pyproject.toml has no [tool.uv.sources] {CORE_DIST} = {{ workspace = true }}; "
                f"without it uv resolves {CORE_DIST} from the index instead of the workspace"
            )))
        if not any(s.operator in ("<", "<=", "==", "~=", "===") for s in req.specifier):
            warnings.append(Finding(pkg.name, (
                f"{pkg.rel} declares \"{pkg.core_requirement_text}\" with no upper bound; a breaking {CORE_DIST} release "
                f"would install with it. Prefer e.g. \"{CORE_DIST}>=0.1,<0.2\""
            )))
        if core is None:
            problems.append(Finding(pkg.name, (
                f"{pkg.rel} depends on {CORE_DIST} but there is no {CORE_DIST} package under packages/"
            )))
            continue
        if core_version is None:
            continue
        ok = req.specifier.contains(core_version, prereleases=True)
        plans[pkg.name].core_in_range = ok
        if not ok:
            problems.append(Finding(pkg.name, (
                f"{pkg.rel} declares \"{pkg.core_requirement_text}\" but the workspace's {CORE_DIST} is {core_version}, "
                "outside that range: uv's workspace sources ignore the range while locking, but the "
                f"published wheels would not install together. Fix: check {pkg.dist} against "
                f"{CORE_DIST} {core_version}, then change the range in {pkg.rel}/pyproject.toml "
                f"(e.g. \"{suggest_core_range(req.specifier, core_version)}\") and add a '### Changed' "
                f"entry to {pkg.rel}/CHANGELOG.md"
            )))


def _check_plugin_api(root: Path, pkgs: list[Package], plans: dict[str, PackagePlan],
                      problems: list[Finding], warnings: list[Finding]) -> int | None:
    core = core_package(pkgs)
    api = plugin_api_version(core)
    declared = [(p, d) for p in pkgs for d in p.plugin_api]
    if api is None:
        if declared and core is not None:
            warnings.append(Finding(CORE_DIST, (
                f"method packages declare plugin_api ranges but {core.rel}/{PLUGIN_API_FILE.as_posix()} "
                f"has no `{PLUGIN_API_NAME} = <int>` line, so they cannot be checked"
            )))
        return None
    for pkg, decl in declared:
        if not SpecifierSet(decl.spec).contains(str(api), prereleases=True):
            problems.append(Finding(pkg.name, (
                f"{decl.file}:{decl.line} declares plugin_api=\"{decl.spec}\" but the workspace's "
                f"{CORE_DIST} has {PLUGIN_API_NAME} = {api}, so the core would refuse to load it. "
                f"Fix: port {pkg.dist} to plugin API {api} and widen the range (e.g. "
                f"plugin_api=\">={api},<{api + 1}\"), with a CHANGELOG entry"
            )))
    # a plugin API change since the core's last release is breaking for every method package
    assert core is not None
    cp = plans[core.name]
    if cp.last_tag:
        old_text = show_file(root, cp.last_tag, f"{core.rel}/{PLUGIN_API_FILE.as_posix()}")
        old = read_plugin_api_version(old_text) if old_text else None
        if old is not None and old != api:
            breaking = any(e.breaking or (e.section or "").lower() == "removed" for e in cp.entries)
            version = core.parsed_version
            pending = version is not None and cp.last_version is not None and version == cp.last_version
            if pending and not breaking:
                warnings.append(Finding(core.name, (
                    f"{PLUGIN_API_NAME} changed {old} -> {api} since {cp.last_tag}, a breaking change "
                    f"for method packages, but {core.rel}/CHANGELOG.md Unreleased has no 'BREAKING' "
                    "or '### Removed' entry. Fix: add a 'BREAKING: plugin API bumped to "
                    f"{api}' entry so the release gets a breaking bump"
                )))
    return api


def make_plan(root: Path) -> Plan:
    pkgs = discover(root)
    problems: list[Finding] = []
    warnings: list[Finding] = []
    plans = {p.name: _plan_package(root, p, problems, warnings) for p in pkgs}
    _check_core_ranges(pkgs, plans, problems, warnings)
    api = _check_plugin_api(root, pkgs, plans, problems, warnings)
    core = core_package(pkgs)
    return Plan(
        root=root,
        packages=[plans[p.name] for p in pkgs],
        problems=problems,
        warnings=warnings,
        core_version=core.version if core else None,
        plugin_api_version=api,
    )


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(plan: Plan) -> str:
    rows = [["package", "version", "last tag", "changed", "entries", "bump", "next", "state"]]
    for pp in plan.packages:
        rows.append([
            pp.pkg.dist,
            pp.pkg.version or "?",
            pp.last_tag or "-",
            "yes" if pp.changed else "no",
            str(len(pp.entries)),
            pp.bump or "-",
            pp.next_version or "-",
            pp.state,
        ])
    out = [f"Workspace {plan.root}", ""]
    if len(rows) == 1:
        out.append("(no packages under packages/)")
    else:
        out.append(_table(rows))
    details = []
    for pp in plan.packages:
        bits = []
        if pp.pkg.core_requirement is not None:
            state = {True: "admits", False: "does NOT admit", None: "?"}[pp.core_in_range]
            bits.append(f"requires {pp.pkg.core_requirement_text} ({state} workspace {CORE_DIST} {plan.core_version})")
        for d in pp.pkg.plugin_api:
            bits.append(f"plugin_api {d.spec} ({d.file}:{d.line})")
        if pp.action:
            bits.append(f"next step: {pp.action}")
        if bits:
            details.append(f"  {pp.pkg.dist}:")
            details += [f"    {b}" for b in bits]
    if plan.plugin_api_version is not None:
        out += ["", f"{CORE_DIST} {PLUGIN_API_NAME} = {plan.plugin_api_version}"]
    if details:
        out += ["", "Details:"] + details
    if plan.warnings:
        out += ["", "Warnings:"] + [f"  warning: [{f.package}] {f.message}" for f in plan.warnings]
    if plan.problems:
        out += ["", f"Problems ({len(plan.problems)}), fix before releasing:"]
        out += [f"  ERROR: [{f.package}] {f.message}" for f in plan.problems]
    else:
        out += ["", "OK: no problems."]
    return "\n".join(out)


def cmd_plan(root: Path, as_json: bool) -> int:
    plan = make_plan(root)
    if as_json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(render(plan))
    return 0 if plan.ok else 1
