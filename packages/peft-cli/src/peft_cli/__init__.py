"""peft-cli: the `peft` command line (`peft methods`, `peft inspect`, `peft merge`, `peft demo`).

Importing the package is cheap: the CLI library, transformers and the method packages are imported
only by the command that needs them. The demo engine is `peft_cli.demo`.
"""

from __future__ import annotations

from .errors import CliError

__all__ = ["CliError"]
