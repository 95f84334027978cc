"""Implementation of ``tools/release.py``: per-package release planning, bumping, building,
verification, tagging and lowest-supported-core checks for the uv workspace.

The modules only use the standard library and ``packaging``; git and uv are called as
subprocesses. See ``docs/releasing.md`` for the process these commands implement.
"""
