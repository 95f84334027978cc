"""mkdocs hook: one page per workspace package, generated from `packages/*/README.md`.

A package added under packages/ gets its page (and a nav entry under "Packages") without any edit
to mkdocs.yml or docs/. Relative links in a README are rewritten: to another package -> its page,
into docs/ -> the docs page or file, anything else -> plain text (it has no page on this site).

The tutorial page (write-a-method.md) is a plain file; the scaffolder's files it shows are kept in sync by
`uv run tools/new_method.py --sync-docs` (tests/test_docs.py fails when they drift).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def _packages() -> list[dict]:
    out = []
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        folder = pyproject.parent
        if not (folder / "README.md").is_file():
            continue
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        methods = sorted((project.get("entry-points", {}) or {}).get("peft.methods", {}) or {})
        out.append({
            "folder": folder.name,
            "dist": project.get("name", folder.name),
            "version": project.get("version", "?"),
            "description": project.get("description", ""),
            "methods": methods,
        })
    order = {"peft-core": 0, "peft-cli": 1}
    return sorted(out, key=lambda p: (order.get(p["dist"], 2), p["dist"]))


def _rewrite_links(text: str, folder: str, folders: set[str]) -> str:
    def replace(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join("packages", folder, path))
        parts = repo_path.split("/")
        if parts[0] == "packages" and len(parts) >= 2 and parts[1] in folders and (len(parts) == 2 or parts[2:] == ["README.md"]):
            return f"[{label}]({parts[1]}.md{'#' + anchor if anchor else ''})"
        if parts[0] == "docs" and (ROOT / repo_path).exists():
            return f"[{label}](../{'/'.join(parts[1:])}{'#' + anchor if anchor else ''})"
        return label  # no page for it on this site
    return LINK.sub(replace, text)


def _index_page(packages: list[dict]) -> str:
    lines = [
        "# Packages",
        "",
        "Every folder under `packages/` is a separately versioned distribution. Method packages register their",
        "methods with peft-core and advertise them through the `peft.methods` entry-point group. This list and",
        "the pages below are generated from the packages' own README files.",
        "",
        "| distribution | version | methods | what |",
        "|---|---|---|---|",
    ]
    for p in packages:
        methods = ", ".join(f"`{m}`" for m in p["methods"]) or "-"
        lines.append(f"| [{p['dist']}]({p['folder']}.md) | {p['version']} | {methods} | {p['description']} |")
    return "\n".join(lines) + "\n"


def on_config(config):
    packages = _packages()
    config["extra"]["peft_packages"] = packages
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "Packages" in entry:
            section = entry["Packages"]
            for p in packages:
                section.append({p["dist"]: f"packages/{p['folder']}.md"})
    return config


def on_files(files, config):
    packages = config["extra"]["peft_packages"]
    folders = {p["folder"] for p in packages}
    files.append(File.generated(config, "packages/index.md", content=_index_page(packages)))
    for p in packages:
        readme = (ROOT / "packages" / p["folder"] / "README.md").read_text(encoding="utf-8")
        files.append(File.generated(config, f"packages/{p['folder']}.md", content=_rewrite_links(readme, p["folder"], folders)))
    return files
