"""peft-compat: the `peft` import of Hugging Face PEFT 0.21.2, backed by peft-core and the installed method packages.

`pip uninstall peft && pip install peft-compat peft-lora` keeps programs written against Hugging Face
PEFT (and transformers, TRL, accelerate, which import `peft` by name) running unchanged. Every name is
resolved on first use: from peft-core, or from the method package that registered it (`peft.LoraConfig`
comes from peft-lora). This package holds no fine-tuning logic of its own.
"""

from __future__ import annotations

from typing import Any

from ._guard import refuse_if_hf_peft_installed

refuse_if_hf_peft_installed()

from ._hf_api import HF_ALL, HF_PEFT_VERSION  # noqa: E402
from ._lazy import resolve  # noqa: E402
from ._metadata import compat_version, install_distribution_alias  # noqa: E402
from ._tuner_aliases import install_tuner_aliases  # noqa: E402

install_distribution_alias()
install_tuner_aliases()

__version__ = compat_version(HF_PEFT_VERSION)
__all__ = list(HF_ALL)

# Hugging Face's `import peft` imports these submodules, so `peft.tuners...` works without importing them.
_SUBMODULES = frozenset({"auto", "config", "functional", "helpers", "mapping", "mapping_func", "mixed_model",
                         "peft_model", "tuners", "utils"})


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    value = resolve(name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(HF_ALL))
