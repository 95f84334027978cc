"""What the toy's test entry point (`toy_install/`) imports: the toy method, with the mutant named by the
PEFT_TOY_MUTANT environment variable applied, so a fresh interpreter runs the same broken variant."""

from __future__ import annotations

import os

from . import ToyLinear
from .mutants import patches

if os.environ.get("PEFT_TOY_MUTANT"):
    for _attr, _value in patches(os.environ["PEFT_TOY_MUTANT"]).items():
        setattr(ToyLinear, _attr, _value)
