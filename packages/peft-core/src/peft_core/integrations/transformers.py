"""Train a peft-core `PeftModel` with transformers' `Trainer`: adapter checkpoints, resuming, checkpointing.

`transformers.Trainer` special-cases Hugging Face PEFT's `peft.PeftModel` by class. A peft-core
`PeftModel` is not that class, so a plain `Trainer`

- drops every dataset column (it reads the accepted columns from `PeftModel.forward(*args, **kwargs)`)
  and finds no `labels` argument (so no evaluation loss),
- writes the whole model's state dict as `model.safetensors` in each checkpoint instead of the
  adapter files (and fails on tied weights), and
- cannot resume from, or load the best model out of, adapter-only checkpoints.

`PeftTrainer` (or `PeftTrainerMixin` in front of any `Trainer` subclass, e.g. TRL's) fixes these:
the base model is inspected for columns and labels, checkpoints and `save_model()` hold
`adapter_config.json` + `adapter_model.safetensors` (other adapters in sub-folders) that
`PeftModel.from_pretrained` loads (and Hugging Face PEFT too), and `resume_from_checkpoint` /
`load_best_model_at_end` load those files back into the model's existing adapters. With
gradient checkpointing on, the input embeddings' output is made to require grad
(`enable_input_require_grads`), so adapters train behind frozen embeddings with reentrant checkpointing too.

Import this module explicitly (`from peft_core.integrations.transformers import PeftTrainer`);
`import peft_core` never imports transformers. The module itself imports transformers' `Trainer` (several
seconds: accelerate, datasets hooks) only when `PeftTrainer` is first used.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch

from ..adapter_files import load_peft_weights
from ..peft_model import PeftModel
from ..serialization import SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME
from ..state_dict import set_peft_model_state_dict

__all__ = ["PeftTrainer", "PeftTrainerMixin", "adapter_checkpoint_folders", "load_adapter_checkpoint"]

TRAINING_ARGS_NAME = "training_args.bin"


def _peft_model(model: Any) -> PeftModel | None:
    """`model` itself, or the PeftModel inside a DDP/accelerate wrapper; None if there is none."""
    seen = 0
    while model is not None and seen < 8:
        if isinstance(model, PeftModel):
            return model
        model = getattr(model, "module", None)
        seen += 1
    return None


def adapter_checkpoint_folders(model: PeftModel, checkpoint: str | os.PathLike) -> dict[str, str]:
    """Adapter name -> folder holding its weights in `checkpoint` (`default` at the root, others in sub-folders)."""
    checkpoint = os.fspath(checkpoint)
    found: dict[str, str] = {}
    for name in model.peft_config:
        folder = checkpoint if name == "default" else os.path.join(checkpoint, name)
        if any(os.path.isfile(os.path.join(folder, f)) for f in (SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME)):
            found[name] = folder
    return found


def load_adapter_checkpoint(model: PeftModel, checkpoint: str | os.PathLike) -> list[str]:
    """Load the adapter weights saved in `checkpoint` into `model`'s existing adapters.

    Returns the names of the adapters restored; raises ValueError when the folder holds none of them.
    Trainability and the active adapter are left as they are.
    """
    folders = adapter_checkpoint_folders(model, checkpoint)
    if not folders:
        raise ValueError(
            f"{os.fspath(checkpoint)!r} holds no adapter weights ({SAFETENSORS_WEIGHTS_NAME}) for the adapters "
            f"{list(model.peft_config)}; was it written by PeftTrainer (or PeftModel.save_pretrained)?"
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    for name, folder in folders.items():
        weights = load_peft_weights(folder, device=device)
        set_peft_model_state_dict(model, weights, adapter_name=name, strict=True)
    return sorted(folders)


class PeftTrainerMixin:
    """Put it before a `transformers.Trainer` (sub)class: `class MyTrainer(PeftTrainerMixin, Trainer)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        peft_model = _peft_model(getattr(self, "model", None))
        if peft_model is None:
            return
        base = peft_model.get_base_model()
        self._inspect_base_model(base)
        if self._checkpointing_requested():
            self._enable_input_require_grads(base)

    # -- what Trainer learns from the model's class --------------------------------------------
    def _inspect_base_model(self, base: torch.nn.Module) -> None:
        from transformers.utils import can_return_loss, find_labels

        if self.args.label_names is None:
            self.label_names = find_labels(type(base))
        self.can_return_loss = can_return_loss(type(base))
        if hasattr(base, "accepts_loss_kwargs"):
            self.model_accepts_loss_kwargs = base.accepts_loss_kwargs
        else:
            params = inspect.signature(base.forward).parameters.values()
            self.model_accepts_loss_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)

    def _set_signature_columns_if_needed(self) -> None:
        peft_model = _peft_model(self.model)
        if peft_model is None or self._signature_columns is not None:
            return super()._set_signature_columns_if_needed()
        columns = list(inspect.signature(peft_model.get_base_model().forward).parameters)
        self._signature_columns = columns + sorted({"label", "label_ids", *self.label_names} - set(columns))

    # -- gradient checkpointing -------------------------------------------------------------------
    def _checkpointing_requested(self) -> bool:
        args = self.args
        return bool(getattr(args, "activation_checkpointing", False) or getattr(args, "gradient_checkpointing", False))

    @staticmethod
    def _enable_input_require_grads(base: torch.nn.Module) -> None:
        """Frozen embeddings + checkpointed blocks: make the blocks' input require grad (once)."""
        if getattr(base, "_require_grads_hook", None) is not None:
            return
        enable = getattr(base, "enable_input_require_grads", None)
        if callable(enable):
            enable()

    # -- saving -----------------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        peft_model = _peft_model(self.model)
        if peft_model is None:
            return super()._save(output_dir, state_dict=state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        # Under FSDP / DeepSpeed the Trainer passes the full state it gathered: the live parameters are shards.
        peft_model.save_pretrained(output_dir, is_main_process=True, state_dict=state_dict)
        processor = self.processing_class
        if processor is None:
            processor = getattr(self.data_collator, "tokenizer", None)
        if processor is not None and hasattr(processor, "save_pretrained"):
            processor.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    # -- loading ----------------------------------------------------------------------------------
    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        peft_model = _peft_model(model if model is not None else self.model)
        if peft_model is None or not adapter_checkpoint_folders(peft_model, resume_from_checkpoint):
            return super()._load_from_checkpoint(resume_from_checkpoint, model=model)
        load_adapter_checkpoint(peft_model, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        peft_model = _peft_model(self.model)
        best = self.state.best_model_checkpoint
        if peft_model is None or best is None or not adapter_checkpoint_folders(peft_model, best):
            return super()._load_best_model()
        load_adapter_checkpoint(peft_model, best)


def _make_peft_trainer() -> type:
    from transformers import Trainer

    class PeftTrainer(PeftTrainerMixin, Trainer):
        """`transformers.Trainer` for peft-core `PeftModel`s (adapter-only checkpoints, resuming, best model)."""

    PeftTrainer.__module__ = __name__
    PeftTrainer.__qualname__ = "PeftTrainer"
    return PeftTrainer


def __getattr__(name: str) -> Any:
    # `PeftTrainer` subclasses transformers.Trainer, whose import is slow: build it on first use.
    if name == "PeftTrainer":
        cls = _make_peft_trainer()
        globals()["PeftTrainer"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
