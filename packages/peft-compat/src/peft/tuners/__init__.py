"""`peft.tuners`: method classes by name (`from peft.tuners import LoraConfig`), resolved like `peft.<Name>`.

`peft.tuners.<method>` and its submodules are the installed method package (see `peft._tuner_aliases`).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from .._lazy import resolve

    return resolve(name)
