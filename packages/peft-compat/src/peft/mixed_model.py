"""`peft.mixed_model`: `PeftMixedModel` (adapters of several methods in one model), when peft-core has it.

transformers imports `PeftMixedModel` at module level (for `isinstance` checks in its Trainer), so the
name must exist even where peft-core does not provide the class yet: then it is a class nothing is an
instance of, which says how to proceed when someone tries to build one.
"""

from __future__ import annotations

from typing import Any

import peft_core

try:
    PeftMixedModel = peft_core.PeftMixedModel
except AttributeError:

    class PeftMixedModel:  # type: ignore[no-redef]
        """Not provided by the installed peft-core: mixing adapters of different methods in one model."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(
                "PeftMixedModel (adapters of different methods in one model) is not provided by the installed "
                "peft-core; use one method per PeftModel (see docs/migrating.md)."
            )


__all__ = ["PeftMixedModel"]
