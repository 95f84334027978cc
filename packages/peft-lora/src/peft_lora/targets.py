"""Default `target_modules` per transformers `model_type` (Hugging Face PEFT 0.21.2's LoRA table).

Used when `LoraConfig.target_modules` is None. The table is peft-core's `QUERY_VALUE_TARGETS` (the
query/value projections, which Hugging Face PEFT repeats per method), with lists as in Hugging Face's
constant. A string value is a regex matched against full module names (Gemma 4's default), a list
holds names or dotted suffixes.
"""

from __future__ import annotations

from peft_core.default_targets import QUERY_VALUE_TARGETS

DEFAULT_TARGET_MODULES: dict[str, list[str] | str] = {
    model_type: targets if isinstance(targets, str) else list(targets)
    for model_type, targets in QUERY_VALUE_TARGETS.items()
}
