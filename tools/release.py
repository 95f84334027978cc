#!/usr/bin/env python3
"""Per-package release tool for this uv workspace: plan, bump, build, tag, lowest-core.

    uv run tools/release.py plan [--json]
    uv run tools/release.py bump <package> <major|minor|patch|auto|current>
    uv run tools/release.py build <package>
    uv run tools/release.py tag <package>
    uv run tools/release.py lowest-core <package>|--all

The process is described in docs/releasing.md; the implementation lives in tools/release_lib/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from release_lib.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
