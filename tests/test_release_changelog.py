"""Unit tests of the release tool's changelog parsing and bump rule (tools/release_lib)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from packaging.requirements import Requirement  # noqa: E402
from packaging.version import Version  # noqa: E402
from release_lib import changelog as cl  # noqa: E402
from release_lib.lowest_core import lowest_admitted  # noqa: E402
from release_lib.plan import suggest_core_range  # noqa: E402
from release_lib.workspace import read_plugin_api_version  # noqa: E402

LOG = textwrap.dedent("""\
    # Changelog

    Intro text.

    ## [Unreleased]

    <!-- add entries below -->

    ### Added
    - Merging for foo.
      Continues here.
    - Nested:
      - item

    ### Fixed

    * A crash.

    ## [0.1.0] - 2025-01-01

    ### Added
    - Initial release.

    [Unreleased]: https://example.invalid/compare/peft-foo-v0.1.0...HEAD
    [0.1.0]: https://example.invalid/releases/peft-foo-v0.1.0
    """)


def test_parse_unreleased_entries() -> None:
    u = cl.Changelog(LOG).unreleased()
    assert [(e.section, e.text) for e in u.entries] == [
        ("Added", "- Merging for foo.\n  Continues here."),
        ("Added", "- Nested:\n  - item"),
        ("Fixed", "* A crash."),
    ]
    assert u.sections == ["Added", "Fixed"]
    assert u.comments == ["<!-- add entries below -->"]
    assert cl.bump_level(u.entries) == "minor"


def test_release_moves_entries_and_keeps_the_rest() -> None:
    out = cl.Changelog(LOG).release("0.2.0", "2025-02-03")
    assert out.startswith("# Changelog\n\nIntro text.\n\n## [Unreleased]\n\n<!-- add entries below -->\n\n"
                          "## [0.2.0] - 2025-02-03\n\n### Added\n- Merging for foo.\n  Continues here.\n")
    assert "### Fixed\n* A crash.\n\n## [0.1.0] - 2025-01-01\n" in out
    assert out.endswith("[0.1.0]: https://example.invalid/releases/peft-foo-v0.1.0\n")
    again = cl.Changelog(out)
    assert again.unreleased().entries == []
    assert again.has_version("0.2.0") and again.has_version("0.1.0")
    assert "Merging for foo" in again.version_section("0.2.0")
    with pytest.raises(ValueError):
        again.release("0.3.0", "2025-02-04")  # nothing to release


def test_release_with_only_unreleased_section_and_link_refs() -> None:
    text = "# Changelog\n\n## [Unreleased]\n\n### Fixed\n- x\n\n[Unreleased]: https://example.invalid\n"
    out = cl.Changelog(text).release("0.1.1", "2025-01-02")
    assert out == ("# Changelog\n\n## [Unreleased]\n\n## [0.1.1] - 2025-01-02\n\n### Fixed\n- x\n\n"
                   "[Unreleased]: https://example.invalid\n")


def test_release_refuses_duplicate_version() -> None:
    with pytest.raises(ValueError, match="already"):
        cl.Changelog(LOG).release("0.1.0", "2025-01-02")


@pytest.mark.parametrize(
    ("entries", "level"),
    [
        ([], None),
        ([("Fixed", "- a")], "patch"),
        ([("Security", "- a"), ("Fixed", "- b")], "patch"),
        ([("Fixed", "- a"), ("Added", "- b")], "minor"),
        ([("Changed", "- a")], "minor"),
        ([("Deprecated", "- a")], "minor"),
        ([("Removed", "- a")], "major"),
        ([("Changed", "- **BREAKING**: renamed x")], "major"),
        ([("Fixed", "- not breaking, just breaking-ish")], "patch"),  # the marker is upper case
        ([(None, "- uncategorized")], "minor"),
        ([("Misc", "- unknown category")], "minor"),
    ],
)
def test_bump_level(entries, level) -> None:
    assert cl.bump_level([cl.Entry(s, t) for s, t in entries]) == level


@pytest.mark.parametrize(
    ("level", "version", "part", "nxt"),
    [
        ("major", "0.3.2", "minor", "0.4.0"),
        ("minor", "0.3.2", "minor", "0.4.0"),
        ("patch", "0.3.2", "patch", "0.3.3"),
        ("major", "1.3.2", "major", "2.0.0"),
        ("minor", "1.3.2", "minor", "1.4.0"),
        ("patch", "1.3.2", "patch", "1.3.3"),
    ],
)
def test_bump_part_and_next_version(level, version, part, nxt) -> None:
    assert cl.bump_part(level, Version(version)) == part
    assert str(cl.next_version(Version(version), part)) == nxt


def test_suggest_core_range() -> None:
    req = Requirement("peft-core>=0.1,<0.2")
    assert suggest_core_range(req.specifier, Version("0.2.0")) == "peft-core>=0.1,<0.3"
    assert suggest_core_range(req.specifier, Version("1.0.0")) == "peft-core>=0.1,<2"
    assert suggest_core_range(Requirement("peft-core==0.1.0").specifier, Version("0.2.1")) == "peft-core>=0.2,<0.3"


def test_lowest_admitted() -> None:
    tags = [(Version(v), f"peft-core-v{v}") for v in ("0.1.0", "0.1.1", "0.2.0", "1.0.0")]
    assert lowest_admitted(tags, Requirement("peft-core>=0.1,<0.2")) == (Version("0.1.0"), "peft-core-v0.1.0")
    assert lowest_admitted(tags, Requirement("peft-core>=0.1.1,<1")) == (Version("0.1.1"), "peft-core-v0.1.1")
    assert lowest_admitted(tags, Requirement("peft-core>=0.3,<0.4")) is None


def test_read_plugin_api_version() -> None:
    assert read_plugin_api_version('"""doc"""\nPLUGIN_API_VERSION = 3\n') == 3
    assert read_plugin_api_version("PLUGIN_API_VERSION: int = 2\n") == 2
    assert read_plugin_api_version("OTHER = 1\n") is None
