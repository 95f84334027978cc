"""Reading and rewriting a package's Keep-a-Changelog ``CHANGELOG.md``.

Only the ``## [Unreleased]`` section is ever rewritten; everything else in the file is kept
byte for byte. Entries are Markdown list items (``- ...`` or ``* ...``, continuation lines
included) under ``### Added`` / ``### Changed`` / ``### Deprecated`` / ``### Removed`` /
``### Fixed`` / ``### Security``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

# Bump level each Keep a Changelog category calls for (before the 0.x adjustment, see bump_part()).
SECTION_LEVELS = {
    "removed": "major",
    "added": "minor",
    "changed": "minor",
    "deprecated": "minor",
    "fixed": "patch",
    "security": "patch",
}
KNOWN_SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
LEVEL_ORDER = {"patch": 0, "minor": 1, "major": 2}
BREAKING_RE = re.compile(r"\bBREAKING\b")

_H2 = re.compile(r"^##(?!#)\s*(.*?)\s*$")
_H3 = re.compile(r"^###(?!#)\s*(.*?)\s*$")
_BULLET = re.compile(r"^([-*+])\s+")
_LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S")
_TITLE = re.compile(r"^\[?(?P<label>[^\]\s]+)\]?(?:\s*[-–—]\s*(?P<date>.*))?$")


@dataclass
class Entry:
    """One changelog entry: its ``###`` category (None when written straight under the
    ``## [Unreleased]`` heading) and its text (the list item, continuation lines included)."""

    section: str | None
    text: str

    @property
    def breaking(self) -> bool:
        return bool(BREAKING_RE.search(self.text))

    @property
    def level(self) -> str:
        """The bump this entry alone calls for ("major", "minor" or "patch")."""
        if self.breaking:
            return "major"
        if self.section is None:
            return "minor"
        return SECTION_LEVELS.get(self.section.lower(), "minor")

    def to_json(self) -> dict:
        return {"section": self.section, "text": self.text, "breaking": self.breaking}


@dataclass
class Unreleased:
    entries: list[Entry] = field(default_factory=list)
    # ``###`` headings seen, in order (empty ones included)
    sections: list[str] = field(default_factory=list)
    # HTML comment lines (templates/hints); kept in Unreleased when releasing
    comments: list[str] = field(default_factory=list)

    def unknown_sections(self) -> list[str]:
        return [s for s in self.sections if s.lower() not in SECTION_LEVELS]

    @property
    def uncategorized(self) -> list[Entry]:
        return [e for e in self.entries if e.section is None]


def _label_version(label: str) -> Version | None:
    try:
        return Version(label)
    except InvalidVersion:
        return None


class Changelog:
    def __init__(self, text: str, path: Path | None = None) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()
        # (line index, label, date) of every "## ..." heading
        self.headings: list[tuple[int, str, str | None]] = []
        for i, line in enumerate(self.lines):
            m = _H2.match(line)
            if m:
                t = _TITLE.match(m.group(1))
                label = t.group("label") if t else m.group(1)
                date = t.group("date") if t else None
                self.headings.append((i, label, date))

    @classmethod
    def read(cls, path: Path) -> "Changelog":
        return cls(path.read_text(encoding="utf-8"), path)

    # -- locating sections ---------------------------------------------------------------
    def _unreleased_index(self) -> int | None:
        for n, (_, label, _) in enumerate(self.headings):
            if label.lower() == "unreleased":
                return n
        return None

    @property
    def has_unreleased(self) -> bool:
        return self._unreleased_index() is not None

    def _section_bounds(self, n: int) -> tuple[int, int]:
        """Body line range [start, end) of the n-th ``##`` section, trailing link reference
        definitions (``[x]: url``) and blank lines excluded."""
        start = self.headings[n][0] + 1
        end = self.headings[n + 1][0] if n + 1 < len(self.headings) else len(self.lines)
        while end > start and (not self.lines[end - 1].strip() or _LINK_DEF.match(self.lines[end - 1])):
            end -= 1
        return start, end

    def versions(self) -> list[str]:
        return [label for _, label, _ in self.headings if label.lower() != "unreleased"]

    def _version_index(self, version: str | Version) -> int | None:
        want = Version(str(version))
        for n, (_, label, _) in enumerate(self.headings):
            v = _label_version(label)
            if v is not None and v == want:
                return n
        return None

    def has_version(self, version: str | Version) -> bool:
        return self._version_index(version) is not None

    def version_section(self, version: str | Version) -> str | None:
        """The body text of ``## [version]`` (None when there is no such section)."""
        n = self._version_index(version)
        if n is None:
            return None
        start, end = self._section_bounds(n)
        return "\n".join(self.lines[start:end]).strip("\n")

    # -- parsing Unreleased --------------------------------------------------------------
    def unreleased(self) -> Unreleased:
        out = Unreleased()
        n = self._unreleased_index()
        if n is None:
            return out
        start, end = self._section_bounds(n)
        section: str | None = None
        items: list[tuple[str | None, list[str]]] = []
        current: list[str] | None = None
        prev_blank = False
        in_comment = False
        for line in self.lines[start:end]:
            stripped = line.strip()
            if in_comment or stripped.startswith("<!--"):
                out.comments.append(line)
                in_comment = "-->" not in stripped
                current = None
                continue
            h3 = _H3.match(line)
            if h3:
                section = h3.group(1).strip()
                out.sections.append(section)
                current = None
                prev_blank = False
                continue
            if not stripped:
                prev_blank = True
                continue
            is_bullet = bool(_BULLET.match(line))
            indented = line[:1].isspace()
            if current is not None and (indented or (not is_bullet and not prev_blank)):
                current.append(line)  # continuation line or nested list item
            else:
                current = [line]
                items.append((section, current))
            prev_blank = False
        out.entries = [Entry(sec, "\n".join(lines)) for sec, lines in items]
        return out

    # -- rewriting -----------------------------------------------------------------------
    def release(self, version: str, date: str) -> str:
        """Text of the changelog with the Unreleased entries moved under
        ``## [version] - date`` and an empty ``## [Unreleased]`` left above it."""
        n = self._unreleased_index()
        if n is None:
            raise ValueError("no '## [Unreleased]' section")
        if self.has_version(version):
            raise ValueError(f"there is already a '## [{version}]' section")
        unreleased = self.unreleased()
        if not unreleased.entries:
            raise ValueError("the Unreleased section has no entries")
        heading_line = self.headings[n][0]
        start, end = self._section_bounds(n)

        body: list[str] = []
        order: list[str | None] = []
        for e in unreleased.entries:
            if e.section not in order:
                order.append(e.section)
        # uncategorized entries first, then categories in the order they were written
        order.sort(key=lambda s: s is not None)
        for sec in order:
            if sec is not None:
                body += [f"### {sec}"]
            body += [e.text for e in unreleased.entries if e.section == sec]
            body.append("")
        new_unreleased = [self.lines[heading_line], ""]
        if unreleased.comments:
            new_unreleased += unreleased.comments + [""]
        released = [f"## [{version}] - {date}", ""] + body
        rest = self.lines[end:]
        while rest and not rest[0].strip():
            rest = rest[1:]
        out = self.lines[:heading_line] + new_unreleased + released + rest
        while out and not out[-1].strip():
            out.pop()
        return "\n".join(out) + "\n"


def bump_level(entries: list[Entry]) -> str | None:
    """Highest bump level the entries call for, or None when there are none."""
    level = None
    for e in entries:
        if level is None or LEVEL_ORDER[e.level] > LEVEL_ORDER[level]:
            level = e.level
    return level


def bump_part(level: str | None, version: Version) -> str | None:
    """The ``uv version --bump`` part for a change level at a given version.

    Before 1.0 the public API is not stable, and the workspace's ranges are written
    ``>=0.N,<0.N+1``: a breaking change bumps the minor number (0.1.3 -> 0.2.0), and so does
    a feature; fixes bump the patch number. From 1.0 on it is plain SemVer.
    """
    if level is None:
        return None
    if level == "major" and version.major == 0:
        return "minor"
    return level


def next_version(version: Version, part: str) -> Version:
    major, minor, micro = (list(version.release) + [0, 0, 0])[:3]
    if part == "major":
        return Version(f"{major + 1}.0.0")
    if part == "minor":
        return Version(f"{major}.{minor + 1}.0")
    if part == "patch":
        # uv drops a pre-release marker on --bump patch from X.Y.Z(rcN) only if it is a
        # final release; this preview mirrors the common case
        return Version(f"{major}.{minor}.{micro + 1}")
    raise ValueError(part)
