"""Exit codes and the one exception type the commands raise for expected failures."""

from __future__ import annotations

EXIT_OK = 0
#: A check failed (plan found problems, bump/tag refused, build verification failed, tests failed).
EXIT_PROBLEMS = 1
#: Bad command line (argparse uses 2 as well).
EXIT_USAGE = 2
#: ``lowest-core``: there is no release tag for the lowest peft-core a package admits,
#: so there is nothing to test against (distinct so CI can tell "skipped" from "failed").
EXIT_NO_BASELINE = 3


class ReleaseError(Exception):
    """An expected failure with a message meant for the maintainer (no traceback printed)."""

    def __init__(self, message: str, code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.code = code
