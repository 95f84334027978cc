"""`LNTuningConfig`: Hugging Face PEFT's LN tuning config (0.21.2), field for field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft_core import PeftConfig


@dataclass
class LNTuningConfig(PeftConfig):
    """Configuration of an LN tuning adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    LN tuning trains a full copy of each targeted module (normally the normalization layers) and
    leaves the original untouched.

    - `target_modules`: list (exact names or dotted suffixes), regex string (full match), or None
      for the per-model default (Llama: `input_layernorm`, `post_attention_layernorm`, `norm`).
    - `exclude_modules`: modules never adapted.
    - `modules_to_save`: other modules trained in full and saved with the adapter.

    Like HF, list fields keep the order they were given in (HF does not turn them into sets here).
    """

    peft_type: str = "LN_TUNING"
    target_modules: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Modules to tune: names/suffixes or a regex string. None: per-model default."},
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules never to adapt (names/suffixes or a regex string)."}
    )
    modules_to_save: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Modules trained in full and saved with the adapter (e.g. a head)."}
    )
