"""Discovering the workspace's packages and what they declare.

Packages are found on disk (every ``packages/*/pyproject.toml``); nothing here names a
package except the core, which the method packages depend on.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import ReleaseError

CORE_DIST = "peft-core"
ENTRY_POINT_GROUP = "peft.methods"
#: where the core states its plugin API version, relative to the core package folder
PLUGIN_API_FILE = Path("src/peft_core/_plugin_api.py")
PLUGIN_API_NAME = "PLUGIN_API_VERSION"
REGISTER_FUNC = "register_peft_method"
PACKAGES_DIR = "packages"
#: ``[tool.peft-release.verify]`` in a package's pyproject: how ``build`` checks a package that is
#: not a method package (or what it checks besides the method checks), see ``VerifySpec``
VERIFY_TABLE = ("tool", "peft-release", "verify")


@dataclass
class VerifySpec:
    """A package's own verification recipe, ``[tool.peft-release.verify]``:

    * ``with-members``: workspace members whose freshly built wheels are installed next to it for the
      checks (their methods are run through the conformance checks too);
    * ``requires``: third-party requirements the checks need beyond the declared dependencies;
    * ``commands``: command lines run in the verification venv (its ``bin`` first on PATH, ``{tmp}``
      replaced by a scratch folder); each must exit 0.
    """

    with_members: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.with_members or self.requires or self.commands)


@dataclass
class PluginApiDecl:
    """A ``register_peft_method(..., plugin_api="...")`` call found in a package's source."""

    file: str  # relative to the workspace root
    line: int
    spec: str


@dataclass
class Package:
    root: Path
    dir: Path
    dist: str
    version: str | None
    import_name: str
    pyproject: dict
    core_requirement: Requirement | None = None
    core_requirement_text: str | None = None  # as written in pyproject.toml
    # runtime dependencies by canonical name (members among them are resolved by the caller)
    requirements: dict[str, Requirement] = field(default_factory=dict)
    verify: VerifySpec = field(default_factory=VerifySpec)
    entry_points: dict[str, str] = field(default_factory=dict)
    plugin_api: list[PluginApiDecl] = field(default_factory=list)
    # problems found while reading the package's own files (bad pyproject, bad specifiers)
    load_problems: list[str] = field(default_factory=list)
    # things the tool could not check statically (e.g. a non-literal plugin_api argument)
    load_warnings: list[str] = field(default_factory=list)

    @property
    def rel(self) -> str:
        return self.dir.relative_to(self.root).as_posix()

    @property
    def name(self) -> str:
        return canonicalize_name(self.dist)

    @property
    def is_core(self) -> bool:
        return self.name == CORE_DIST

    @property
    def is_method(self) -> bool:
        """A method package: anything besides the core that depends on the core."""
        return not self.is_core and self.core_requirement is not None

    @property
    def kind(self) -> str:
        """How ``build`` verifies it: ``core``, ``method`` (has ``peft.methods`` entry points),
        ``app`` (depends on the core, declares verification commands) or ``unknown``."""
        if self.is_core:
            return "core"
        if self.entry_points:
            return "method"
        if self.verify.commands:
            return "app"
        return "unknown"

    @property
    def changelog_path(self) -> Path:
        return self.dir / "CHANGELOG.md"

    @property
    def pyproject_path(self) -> Path:
        return self.dir / "pyproject.toml"

    @property
    def parsed_version(self) -> Version | None:
        try:
            return Version(self.version) if self.version else None
        except InvalidVersion:
            return None

    @property
    def tag_prefix(self) -> str:
        return f"{self.name}-v"

    def tag_for(self, version: str | Version) -> str:
        return f"{self.tag_prefix}{version}"

    def dependency_group(self, group: str) -> list[str]:
        """Requirements of a ``[dependency-groups]`` group, ``{include-group = ...}`` expanded."""
        groups = self.pyproject.get("dependency-groups", {})
        out: list[str] = []
        seen: set[str] = set()

        def expand(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for item in groups.get(name, []):
                if isinstance(item, str):
                    out.append(item)
                elif isinstance(item, dict) and "include-group" in item:
                    expand(item["include-group"])

        expand(group)
        return out


def _import_name(pkg_dir: Path, project: dict, pyproject: dict) -> str:
    wheel = pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    pkgs = wheel.get("packages")
    if isinstance(pkgs, list) and pkgs:
        return Path(pkgs[0]).name
    src = pkg_dir / "src"
    if src.is_dir():
        candidates = sorted(p.name for p in src.iterdir() if (p / "__init__.py").is_file())
        if len(candidates) == 1:
            return candidates[0]
    return canonicalize_name(str(project.get("name", pkg_dir.name))).replace("-", "_")


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def scan_plugin_api(root: Path, pkg_dir: Path) -> tuple[list[PluginApiDecl], list[str], list[str]]:
    """``plugin_api="..."`` keyword arguments of ``register_peft_method`` calls in src/:
    (declarations, problems, warnings)."""
    decls: list[PluginApiDecl] = []
    problems: list[str] = []
    warnings: list[str] = []
    src = pkg_dir / "src"
    if not src.is_dir():
        return decls, problems, warnings
    for path in sorted(src.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue  # not our job to report; the package's own tests will
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _call_name(node.func) == REGISTER_FUNC):
                continue
            for kw in node.keywords:
                if kw.arg != "plugin_api":
                    continue
                if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    spec = kw.value.value
                    try:
                        SpecifierSet(spec)
                    except InvalidSpecifier:
                        problems.append(
                            f"{rel}:{node.lineno}: plugin_api={spec!r} is not a valid version "
                            "specifier; write it like plugin_api=\">=1,<2\""
                        )
                        continue
                    decls.append(PluginApiDecl(rel, node.lineno, spec))
                else:
                    warnings.append(
                        f"{rel}:{node.lineno}: plugin_api is not a string literal, so the release "
                        "tool cannot check it; write it like plugin_api=\">=1,<2\""
                    )
    return decls, problems, warnings


def read_plugin_api_version(text: str) -> int | None:
    """The int assigned to ``PLUGIN_API_VERSION`` at module level, or None."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        targets: list[ast.expr] = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if isinstance(t, ast.Name) and t.id == PLUGIN_API_NAME:
                if isinstance(value, ast.Constant) and isinstance(value.value, int):
                    return value.value
    return None


def load_package(root: Path, pkg_dir: Path) -> Package:
    pyproject_path = pkg_dir / "pyproject.toml"
    problems: list[str] = []
    try:
        data = tomllib.loads(pyproject_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{pyproject_path}: invalid TOML: {exc}") from exc
    project = data.get("project", {})
    dist = project.get("name")
    if not dist:
        raise ReleaseError(f"{pyproject_path}: [project] has no name; every package needs one")
    version = project.get("version")
    if "version" in project.get("dynamic", []) or not version:
        problems.append(
            "pyproject.toml has no static [project] version; the release tool (and `uv version`) "
            'need a literal `version = "X.Y.Z"`'
        )
        version = None
    else:
        try:
            Version(version)
        except InvalidVersion:
            problems.append(f"version {version!r} in pyproject.toml is not a valid PEP 440 version")
    pkg = Package(
        root=root,
        dir=pkg_dir,
        dist=dist,
        version=version,
        import_name=_import_name(pkg_dir, project, data),
        pyproject=data,
        load_problems=problems,
    )
    for raw in project.get("dependencies", []):
        try:
            req = Requirement(raw)
        except InvalidRequirement as exc:
            problems.append(f"dependency {raw!r} is not a valid requirement: {exc}")
            continue
        pkg.requirements[canonicalize_name(req.name)] = req
        if canonicalize_name(req.name) == CORE_DIST and not pkg.is_core:
            pkg.core_requirement = req
            pkg.core_requirement_text = raw.strip()
    pkg.verify = _verify_spec(data, problems)
    pkg.entry_points = dict(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))
    pkg.plugin_api, scan_problems, pkg.load_warnings = scan_plugin_api(root, pkg_dir)
    problems.extend(scan_problems)
    return pkg


def _verify_spec(data: dict, problems: list[str]) -> VerifySpec:
    table: object = data
    for key in VERIFY_TABLE:
        table = table.get(key, {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        table = {}
    spec = VerifySpec()
    where = "[" + ".".join(VERIFY_TABLE) + "]"
    for key, attr in (("with-members", "with_members"), ("requires", "requires"), ("commands", "commands")):
        value = table.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{where} {key} must be a list of strings, got {value!r}")
            continue
        setattr(spec, attr, list(value))
    for raw in spec.requires:
        try:
            Requirement(raw)
        except InvalidRequirement as exc:
            problems.append(f"{where} requires {raw!r} is not a valid requirement: {exc}")
    unknown = sorted(set(table) - {"with-members", "requires", "commands"})
    if unknown:
        problems.append(f"{where} has unknown keys {unknown}; known: with-members, requires, commands")
    return spec


def is_workspace_member(root: Path, pkg: Package) -> bool:
    """Whether the root's ``[tool.uv.workspace]`` takes ``pkg`` in (``members`` globs less ``exclude``):
    uv's ``--package`` finds only members, so packages kept out (peft-compat) are driven by folder."""
    try:
        ws = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["uv"]["workspace"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return False
    globs = {key: [g.rstrip("/") for g in ws.get(key, [])] for key in ("members", "exclude")}
    return any(fnmatchcase(pkg.rel, g) for g in globs["members"]) and not any(
        fnmatchcase(pkg.rel, g) for g in globs["exclude"]
    )


def member_closure(pkgs: list[Package], pkg: Package, extra: list[str] = ()) -> list[Package]:
    """The workspace members ``pkg`` needs at run time (transitively, ``pkg`` itself excluded),
    plus the members named in ``extra`` and what they need; dependencies first."""
    by_name = {p.name: p for p in pkgs}
    order: list[Package] = []
    seen = {pkg.name}

    def visit(names: list[str]) -> None:
        for name in names:
            dep = by_name.get(canonicalize_name(name))
            if dep is None or dep.name in seen:
                continue
            seen.add(dep.name)
            visit(list(dep.requirements))
            order.append(dep)

    visit(list(pkg.requirements))
    for name in extra:
        if canonicalize_name(name) not in by_name:
            raise ReleaseError(
                f"{pkg.rel}/pyproject.toml [{'.'.join(VERIFY_TABLE)}] with-members names {name!r}, which is "
                f"not a package under {PACKAGES_DIR}/"
            )
    visit(list(extra))
    return order


def discover(root: Path) -> list[Package]:
    base = root / PACKAGES_DIR
    if not base.is_dir():
        raise ReleaseError(f"{root} has no {PACKAGES_DIR}/ folder; pass the workspace root with --root")
    pkgs = [load_package(root, d) for d in sorted(base.iterdir()) if (d / "pyproject.toml").is_file()]
    seen: dict[str, Package] = {}
    for p in pkgs:
        if p.name in seen:
            raise ReleaseError(
                f"{p.rel} and {seen[p.name].rel} both declare the distribution name {p.dist!r}"
            )
        seen[p.name] = p
    return pkgs


def find_package(pkgs: list[Package], ident: str) -> Package:
    """A package by distribution name, folder name or folder path (``packages/peft-lora``)."""
    want = ident.rstrip("/")
    for p in pkgs:
        if canonicalize_name(want) == p.name or want in (p.dir.name, p.rel) or want == p.import_name:
            return p
    names = ", ".join(p.dist for p in pkgs) or "(none)"
    raise ReleaseError(f"no package {ident!r} under {PACKAGES_DIR}/; known packages: {names}")


def core_package(pkgs: list[Package]) -> Package | None:
    for p in pkgs:
        if p.is_core:
            return p
    return None


def plugin_api_version(core: Package | None) -> int | None:
    if core is None:
        return None
    path = core.dir / PLUGIN_API_FILE
    if not path.is_file():
        return None
    return read_plugin_api_version(path.read_text(encoding="utf-8"))
