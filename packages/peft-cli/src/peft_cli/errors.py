"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class CliError(Exception):
    """A user error (bad path, method not installed, ...): shown as `peft <command>: error: <message>`."""

    exit_code = 1
