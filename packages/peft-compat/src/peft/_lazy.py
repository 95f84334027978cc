"""Resolve a Hugging Face PEFT name to the object that implements it here, on first use.

Names come from three places, in this order: peft-compat's own modules (thin re-exports of peft-core,
or of names core doesn't have under Hugging Face's module path), peft-core, and the installed method
packages (each one's `__all__`, found through the `peft.methods` entry points). Nothing is imported
before a name is asked for, so `import peft` stays cheap.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from ._hf_api import HF_ALL, HF_METHOD_OF_NAME, HF_PEFT_VERSION

# Name -> module (relative names are peft-compat's) holding it, for names not looked up in method packages.
OWN_NAMES: dict[str, str] = {
    "PeftType": ".utils.peft_types",
    "TaskType": ".utils.peft_types",
    "PeftWarning": "peft_core.errors",
    "PeftError": "peft_core",
    "PeftConfig": "peft_core",
    "PromptLearningConfig": "peft_core",
    "PeftModel": "peft_core",
    "PeftModelForCausalLM": "peft_core",
    "PeftModelForFeatureExtraction": "peft_core",
    "PeftModelForQuestionAnswering": "peft_core",
    "PeftModelForSeq2SeqLM": "peft_core",
    "PeftModelForSequenceClassification": "peft_core",
    "PeftModelForTokenClassification": "peft_core",
    "PeftMixedModel": ".mixed_model",
    "get_peft_model": "peft_core",
    "inject_adapter_in_model": "peft_core",
    "get_peft_model_state_dict": "peft_core",
    "set_peft_model_state_dict": "peft_core",
    "load_peft_weights": "peft_core",
    "get_peft_config": "peft_core",
    "get_layer_status": "peft_core",
    "get_model_status": "peft_core",
    "get_base_model_state_dict": "peft_core",
    "set_base_model_state_dict": "peft_core",
    "cast_mixed_precision_params": "peft_core",
    "shift_tokens_right": ".utils.other",
    "prepare_model_for_kbit_training": ".utils.other",
    "AutoPeftModel": "peft_core.auto",
    "AutoPeftModelForCausalLM": "peft_core.auto",
    "AutoPeftModelForFeatureExtraction": "peft_core.auto",
    "AutoPeftModelForQuestionAnswering": "peft_core.auto",
    "AutoPeftModelForSeq2SeqLM": "peft_core.auto",
    "AutoPeftModelForSequenceClassification": "peft_core.auto",
    "AutoPeftModelForTokenClassification": "peft_core.auto",
    "PEFT_TYPE_TO_CONFIG_MAPPING": ".mapping",
    "PEFT_TYPE_TO_TUNER_MAPPING": ".mapping",
    "PEFT_TYPE_TO_MIXED_MODEL_MAPPING": ".mapping",
    "MODEL_TYPE_TO_PEFT_MODEL_MAPPING": ".peft_model",
}

_LOCK = threading.Lock()
_METHOD_NAMES: dict[str, list[tuple[str, Any]]] | None = None


def method_package_names() -> dict[str, list[tuple[str, Any]]]:
    """Public name -> [(providing package, object)] over every installed method package."""
    global _METHOD_NAMES
    with _LOCK:
        if _METHOD_NAMES is None:
            from peft_core import load_all_methods

            found: dict[str, list[tuple[str, Any]]] = {}
            modules = sorted({method.module for method in load_all_methods().values()})
            for module_name in modules:
                module = importlib.import_module(module_name)
                for name in getattr(module, "__all__", ()):
                    found.setdefault(name, []).append((module_name, getattr(module, name)))
            _METHOD_NAMES = found
        return _METHOD_NAMES


def resolve(name: str, package: str = "peft") -> Any:
    """The object for `peft.<name>`; AttributeError saying what to install when nothing provides it."""
    where = OWN_NAMES.get(name)
    if where is not None:
        module = importlib.import_module(where, package) if where.startswith(".") else importlib.import_module(where)
        try:
            return getattr(module, name)
        except AttributeError:
            if name not in HF_ALL:
                raise
            raise AttributeError(missing_message(name)) from None
    if not name[:1].isupper() and name not in HF_ALL:
        raise AttributeError(f"module 'peft' has no attribute {name!r}")
    providers = method_package_names().get(name, [])
    if len(providers) == 1:
        return providers[0][1]
    if len(providers) > 1:
        raise AttributeError(
            f"peft.{name} is ambiguous: it is exported by {', '.join(m for m, _ in providers)}. Import it from "
            f"the package you mean instead."
        )
    if name in HF_ALL:
        raise AttributeError(missing_message(name))
    raise AttributeError(f"module 'peft' has no attribute {name!r}")


def missing_message(name: str) -> str:
    method = HF_METHOD_OF_NAME.get(name)
    if method is not None:
        dist = "peft-" + method.replace("_", "-")
        return (
            f"peft.{name} belongs to Hugging Face PEFT {HF_PEFT_VERSION}'s {method!r} method, and no installed "
            f"package provides it. Install the method's package if peft-modular has one (`pip install {dist}`); "
            f"docs/migrating.md lists the methods available and the workarounds for the others."
        )
    return (
        f"peft.{name} is part of Hugging Face PEFT {HF_PEFT_VERSION}'s API but peft-compat does not provide it "
        f"yet; docs/migrating.md lists what is missing and the workaround."
    )
