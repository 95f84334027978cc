"""`AutoPeftModel*.from_pretrained(adapter)`: load the adapter's base model with transformers, then the adapter.

The base model comes from the adapter config's `base_model_name_or_path` (and `revision`), with the
transformers auto class of the task (`AutoPeftModelForCausalLM` -> `AutoModelForCausalLM`); plain
`AutoPeftModel` uses the config's `auto_mapping` (written when `task_type` is None), importing only
modules of allow-listed libraries, since the config is untrusted input. transformers is imported
only when a class is used.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, ClassVar

from .config import PeftConfig, TaskType
from .errors import ConfigError
from .peft_model import PeftModel
from .task_models import TASK_WRAPPERS

# What peft-compat's `peft.auto` re-exports (`peft_core` lists them among its lazily imported names).
__all__ = [
    "AutoPeftModel",
    "AutoPeftModelForCausalLM",
    "AutoPeftModelForFeatureExtraction",
    "AutoPeftModelForQuestionAnswering",
    "AutoPeftModelForSeq2SeqLM",
    "AutoPeftModelForSequenceClassification",
    "AutoPeftModelForTokenClassification",
]

DEFAULT_IMPORT_ALLOWLIST = ("diffusers", "lerobot", "megatron-core", "transformers")
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "proxies")
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"


def _allowed(parent: str, allowlist: list[str] | tuple[str, ...]) -> bool:
    return any(parent == allowed or parent.startswith(f"{allowed}.") for allowed in allowlist)


class _AutoPeftModel:
    _task_type: ClassVar[str | None] = None  # None: AutoPeftModel (class from the config's auto_mapping)
    _auto_class_name: ClassVar[str | None] = None  # the transformers auto class for the task

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"{type(self).__name__} is not instantiated; use {type(self).__name__}.from_pretrained(path).")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        adapter_name: str = "default",
        is_trainable: bool = False,
        config: PeftConfig | None = None,
        revision: str | None = None,
        import_allowlist: list[str] | None = None,
        **kwargs: Any,
    ) -> PeftModel:
        """Load the base model named by the adapter's config, then the adapter; `kwargs` go to the base
        model's `from_pretrained` (e.g. `torch_dtype`), and the Hub options among them to the adapter's too."""
        hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        if config is None:
            config = PeftConfig.from_pretrained(pretrained_model_name_or_path, revision=revision, **hub_kwargs)
        task_type = config.task_type
        if cls._task_type is None:
            if task_type is not None:
                raise ConfigError(
                    f"The adapter has task_type {task_type!r}: load it with the matching class (e.g. "
                    f"AutoPeftModelForCausalLM for 'CAUSAL_LM'), not AutoPeftModel."
                )
            target_class = cls._class_from_auto_mapping(config, import_allowlist or DEFAULT_IMPORT_ALLOWLIST)
        else:
            if task_type is not None and task_type != cls._task_type:
                raise ConfigError(
                    f"The adapter has task_type {task_type!r}, but {cls.__name__} loads {cls._task_type!r} adapters; "
                    f"use the class for {task_type!r}."
                )
            import transformers

            target_class = getattr(transformers, cls._auto_class_name)
        if not config.base_model_name_or_path:
            raise ConfigError(
                "The adapter config has no base_model_name_or_path, so the base model is unknown; load the base model "
                "yourself and use PeftModel.from_pretrained(base_model, path)."
            )
        base_model = target_class.from_pretrained(config.base_model_name_or_path, revision=config.revision, **kwargs)
        cls._resize_embeddings_to_tokenizer(base_model, pretrained_model_name_or_path, revision, hub_kwargs)
        wrapper = TASK_WRAPPERS.get(str(task_type), PeftModel) if task_type is not None else PeftModel
        return wrapper.from_pretrained(
            base_model,
            pretrained_model_name_or_path,
            adapter_name=adapter_name,
            is_trainable=is_trainable,
            config=config,
            revision=revision,
            **hub_kwargs,
        )

    @staticmethod
    def _class_from_auto_mapping(config: PeftConfig, allowlist: list[str] | tuple[str, ...]) -> Any:
        mapping = config.auto_mapping or {}
        parent, name = mapping.get("parent_library"), mapping.get("base_model_class")
        if not isinstance(parent, str) or not isinstance(name, str):
            raise ConfigError(
                "The adapter config has neither a task_type nor an auto_mapping naming the base model class; load the "
                "base model yourself and use PeftModel.from_pretrained(base_model, path)."
            )
        if not _allowed(parent, allowlist):
            raise ConfigError(
                f"The adapter config asks to import {parent!r}, which is not in the import allowlist {list(allowlist)}. "
                f"If that library is safe, pass import_allowlist=[{parent!r}]."
            )
        return getattr(importlib.import_module(parent), name)

    @staticmethod
    def _resize_embeddings_to_tokenizer(
        base_model: Any, path: str | os.PathLike, revision: str | None, hub_kwargs: dict[str, Any]
    ) -> None:
        """A tokenizer saved with the adapter may have added tokens: grow the embeddings to its size first."""
        from .hub import resolve_adapter_file

        try:
            found = resolve_adapter_file(path, TOKENIZER_CONFIG_NAME, revision=revision, **hub_kwargs)
        except Exception:  # no tokenizer is the usual case; don't fail the load over it
            found = None
        if found is None or not hasattr(base_model, "get_input_embeddings"):
            return
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, **hub_kwargs)
        if len(tokenizer) != base_model.get_input_embeddings().weight.shape[0]:
            base_model.resize_token_embeddings(len(tokenizer))


def _auto(name: str, task: TaskType | None, auto_class: str | None) -> type[_AutoPeftModel]:
    cls = type(name, (_AutoPeftModel,), {"_task_type": task.value if task else None, "_auto_class_name": auto_class})
    cls.__module__ = __name__
    cls.__doc__ = f"Loads a {task.value if task else 'task-less'} adapter and its base model (see the module docstring)."
    return cls


AutoPeftModel = _auto("AutoPeftModel", None, None)
AutoPeftModelForCausalLM = _auto("AutoPeftModelForCausalLM", TaskType.CAUSAL_LM, "AutoModelForCausalLM")
AutoPeftModelForSeq2SeqLM = _auto("AutoPeftModelForSeq2SeqLM", TaskType.SEQ_2_SEQ_LM, "AutoModelForSeq2SeqLM")
AutoPeftModelForSequenceClassification = _auto(
    "AutoPeftModelForSequenceClassification", TaskType.SEQ_CLS, "AutoModelForSequenceClassification"
)
AutoPeftModelForTokenClassification = _auto(
    "AutoPeftModelForTokenClassification", TaskType.TOKEN_CLS, "AutoModelForTokenClassification"
)
AutoPeftModelForQuestionAnswering = _auto(
    "AutoPeftModelForQuestionAnswering", TaskType.QUESTION_ANS, "AutoModelForQuestionAnswering"
)
AutoPeftModelForFeatureExtraction = _auto("AutoPeftModelForFeatureExtraction", TaskType.FEATURE_EXTRACTION, "AutoModel")
