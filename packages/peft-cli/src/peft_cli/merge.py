"""`peft merge`: fold an adapter into a local transformers model and save the full model.

The transformers class comes from the adapter: its `task_type` picks the Auto class
(`CAUSAL_LM` -> `AutoModelForCausalLM`, ...); an adapter saved without a task type names the
base model's class in `auto_mapping`; otherwise `AutoModel`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CliError
from .inspect_adapter import BIN_NAME, CONFIG_NAME, SAFETENSORS_NAME, read_config, read_weights

AUTO_CLASSES = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}
# Files of the base folder that belong with the merged model (tokenizer and friends).
COMPANION_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
    "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "chat_template.jinja", "chat_template.json",
    "preprocessor_config.json", "processor_config.json",
)
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class MergeResult:
    out: Path
    model_class: str
    files: list[str]
    total_bytes: int
    copied: list[str]


def model_class_name(adapter_config: dict[str, Any]) -> str:
    """The transformers class used to load the base for this adapter."""
    task = adapter_config.get("task_type")
    if task is not None:
        if task not in AUTO_CLASSES:
            raise CliError(f"unknown task_type {task!r} in {CONFIG_NAME}; known: {', '.join(AUTO_CLASSES)}")
        return AUTO_CLASSES[task]
    mapping = adapter_config.get("auto_mapping") or {}
    cls = mapping.get("base_model_class")
    if cls and str(mapping.get("parent_library", "")).startswith("transformers"):
        return cls
    return "AutoModel"


def _check_inputs(base: Path, adapter: Path, out: Path, force: bool) -> None:
    if not base.is_dir():
        raise CliError(f"--base {str(base)!r} is not a folder; give a local transformers model folder (with config.json)")
    if not (base / "config.json").is_file():
        raise CliError(f"--base {str(base)!r} has no config.json; is it a transformers model folder?")
    if not adapter.is_dir():
        raise CliError(f"--adapter {str(adapter)!r} is not a folder")
    if not (adapter / CONFIG_NAME).is_file():
        raise CliError(f"--adapter {str(adapter)!r} has no {CONFIG_NAME}; is it an adapter folder?")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {str(out)!r} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CliError(f"--out {str(out)!r} is not empty; choose another folder or pass --force to write into it")
    if out.resolve() in (base.resolve(), adapter.resolve()):
        raise CliError("--out must differ from --base and --adapter")


def merge_adapter(
    base: str | Path,
    adapter: str | Path,
    out: str | Path,
    *,
    max_shard_size: str | int = "5GB",
    dtype: str = "auto",
    safe_merge: bool = False,
    force: bool = False,
    progress: bool = True,
) -> MergeResult:
    """Load `base`, apply the adapter in `adapter`, merge it and `save_pretrained` the full model to `out`."""
    from tqdm.auto import tqdm

    base, adapter, out = Path(base), Path(adapter), Path(out)
    _check_inputs(base, adapter, out, force)
    if dtype not in DTYPES:
        raise CliError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    adapter_config = read_config(adapter)

    import torch
    import transformers
    from peft_core import PeftConfig, PeftError, PeftModel
    from peft_core.discovery import load_method

    method = adapter_config["peft_type"].lower()
    try:
        spec = load_method(method)
    except PeftError as exc:
        raise CliError(f"cannot merge a {adapter_config['peft_type']} adapter: {_one_line(exc)}") from None
    config = PeftConfig.from_pretrained(adapter)  # a bad field is refused here, before the base model is loaded
    if config.is_prompt_learning:
        raise CliError(
            f"{config.peft_type} is a prompt-learning method: it adds virtual tokens instead of changing weights, "
            "so there is nothing to merge; load the adapter with PeftModel.from_pretrained instead"
        )
    if not getattr(spec.model_cls, "supports_merge", True):
        raise CliError(
            f"{config.peft_type} adapters cannot be merged into the base weights (the method {method!r} of "
            f"{spec.module} declares supports_merge = False); load the adapter with PeftModel.from_pretrained instead"
        )
    # the weights file too: malformed, truncated or saved with another config -> refused now, not after loading the base
    if read_weights(adapter, adapter_config) is None:
        raise CliError(f"--adapter {str(adapter)!r} has no {SAFETENSORS_NAME} or {BIN_NAME}; the adapter was not saved completely")
    class_name = model_class_name(adapter_config)
    model_cls = getattr(transformers, class_name, None)
    if model_cls is None:
        raise CliError(f"transformers has no class {class_name!r} (named by the adapter's auto_mapping)")

    steps = ["load base model", "apply adapter", "merge", "save"]
    with tqdm(total=len(steps), desc="merging", unit="step", disable=not progress) as bar:
        bar.set_postfix_str(steps[0])
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        try:
            model = model_cls.from_pretrained(base, dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot load the base model from {str(base)!r} as {class_name}: {_one_line(exc)}") from None
        bar.update()
        bar.set_postfix_str(steps[1])
        try:
            peft_model = PeftModel.from_pretrained(model, adapter)
        except (PeftError, ValueError, RuntimeError) as exc:
            raise CliError(f"the adapter does not fit the base model: {_one_line(exc)}") from None
        bar.update()
        bar.set_postfix_str(steps[2])
        try:
            merged = peft_model.merge_and_unload(progressbar=progress, safe_merge=safe_merge)
        except ValueError as exc:
            raise CliError(f"merging failed: {_one_line(exc)}") from None
        bar.update()
        bar.set_postfix_str(steps[3])
        out.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(out, max_shard_size=max_shard_size, safe_serialization=True)
        copied = []
        for name in COMPANION_FILES:
            src = base / name
            if src.is_file() and not (out / name).exists():
                shutil.copy2(src, out / name)
                copied.append(name)
        bar.update()
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    total = sum((out / f).stat().st_size for f in files)
    return MergeResult(out=out, model_class=type(merged).__name__, files=files, total_bytes=total, copied=copied)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
