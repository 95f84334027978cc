"""`peft.functional`: adapter operations for integrations that inject adapters in place (peft-core's)."""

from peft_core.functional import *  # noqa: F403  (every name of peft_core.functional.__all__)
from peft_core.functional import __all__  # noqa: F401
