"""`PeftTypeName`: the string a config stores as `peft_type`, usable like Hugging Face PEFT's enum member.

Hugging Face PEFT's `PeftType` is a closed `str` enum, and code written for it (transformers, TRL)
reads `config.peft_type.value` or `.name`. Here peft types are an open set, so the value is a `str`
subclass: it equals, hashes and serialises as the plain upper-case string, and also has `.value` / `.name`.
"""

from __future__ import annotations


class PeftTypeName(str):
    """An upper-case peft type such as `"LORA"`; `.value` and `.name` give the string itself."""

    __slots__ = ()

    def __new__(cls, value: str) -> PeftTypeName:
        return super().__new__(cls, str(value).upper())

    @property
    def value(self) -> str:
        return str(self)

    @property
    def name(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"<PeftType.{self}: {str(self)!r}>"

    def __reduce__(self) -> tuple:
        return (PeftTypeName, (str(self),))
