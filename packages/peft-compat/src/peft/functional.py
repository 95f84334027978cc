"""`peft.functional`: adapter operations for integrations that inject adapters in place (peft-core's)."""

from peft_core import functional as _core_functional
from peft_core.functional import *  # noqa: F403  (the names of peft_core.functional.__all__)

__all__ = list(_core_functional.__all__)
