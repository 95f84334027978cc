"""Key renames for transformers' own adapter loader (`PreTrainedModel.load_adapter`).

transformers loads an adapter file into a model whose adapter layers were injected in place (no
`PeftModel` wrapper), renaming the file's keys with regular expressions it gets from the PEFT
library: saved keys start with `base_model.model.` and lack the adapter name, model keys are the
reverse. Like Hugging Face PEFT, the adapter name goes after each parameter whose name starts with
the method's prefix. Needs no transformers import (the caller wraps the pairs in its own classes).
"""

from __future__ import annotations

import re

from ..registry import get_peft_method, registered_methods


def adapter_key_renames(peft_type: str | None, adapter_name: str) -> list[tuple[str, str]]:
    """(regex, replacement) pairs, applied in order, from saved adapter keys to in-place model keys.

    For an unknown or missing `peft_type`, every registered method's prefix is covered.
    """
    pairs = [(r"base_model\.model\.model\.", "model."), (r"base_model\.model\.", "")]
    if peft_type is not None:
        try:
            prefixes = {get_peft_method(str(peft_type)).prefix}
        except KeyError:
            prefixes = {m.prefix for m in registered_methods().values()}
    else:
        prefixes = {m.prefix for m in registered_methods().values()}
    for prefix in sorted(prefixes):
        pairs.append((rf"({re.escape(prefix)}[^\.]*)", rf"\1.{adapter_name}"))
    return pairs
