"""`peft_core.integrations.transformers`: transformers' Trainer trains, checkpoints and resumes a PeftModel.

The toy method (tests/_support/peft_toy) on a tiny Llama, a few steps each: adapter files in every
checkpoint, loadable with PeftModel.from_pretrained; resuming restores the adapter; gradient
checkpointing (reentrant) with frozen embeddings still trains the adapter.
"""

from __future__ import annotations

import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

from peft_core import PeftModel, get_peft_model  # noqa: E402
from peft_toy import ToyConfig  # noqa: E402
from core_test_models import make_tiny_llama  # noqa: E402


class Rows(torch.utils.data.Dataset):
    """Fixed token rows with an extra column the model does not accept (Trainer must drop it)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        ids = torch.randint(0, 128, (10,), generator=torch.Generator().manual_seed(i))
        return {"input_ids": ids, "labels": ids, "text_length": 10}


def _model():
    config = ToyConfig(target_modules=["q_proj", "v_proj"], init_weights=False, task_type="CAUSAL_LM")
    return get_peft_model(make_tiny_llama(), config)


def _args(out, **kwargs):
    defaults = dict(
        output_dir=str(out), per_device_train_batch_size=4, learning_rate=5e-2, report_to=[], use_cpu=True,
        save_strategy="steps", logging_steps=1, disable_tqdm=True, seed=0, dataloader_num_workers=0,
    )
    defaults.update(kwargs)
    return transformers.TrainingArguments(**defaults)


def _adapter_state(model):
    return {k: v.detach().clone() for k, v in model.named_parameters() if "toy_" in k}


def test_checkpoints_hold_loadable_adapters_and_resume_restores_them(tmp_path):
    from peft_core.integrations.transformers import PeftTrainer

    torch.manual_seed(0)
    model = _model()
    trainer = PeftTrainer(model=model, args=_args(tmp_path / "run", max_steps=4, save_steps=2), train_dataset=Rows())
    assert trainer.label_names == ["labels"]  # found on the base model's forward, as for HF PEFT models
    trainer._set_signature_columns_if_needed()
    assert "input_ids" in trainer._signature_columns and "text_length" not in trainer._signature_columns
    trainer.train()
    final = _adapter_state(model)

    for step in (2, 4):
        ckpt = tmp_path / "run" / f"checkpoint-{step}"
        assert (ckpt / "adapter_config.json").is_file() and (ckpt / "adapter_model.safetensors").is_file()
        assert not (ckpt / "model.safetensors").exists()  # no full-model copy
    # the last checkpoint loads as an adapter with the trained outputs
    x = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(9))
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=x).logits
    loaded = PeftModel.from_pretrained(make_tiny_llama(), tmp_path / "run" / "checkpoint-4")
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, expected)

    # resume from checkpoint-2 in a fresh trainer on a fresh model: the adapter is restored from the
    # checkpoint, then training continues to the same end point
    torch.manual_seed(123)  # a different initial adapter: only the checkpoint can make them agree
    fresh = _model()
    restored_at_2 = {}

    class Spy(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            restored_at_2.update(_adapter_state(fresh))

    resumed = PeftTrainer(
        model=fresh, args=_args(tmp_path / "run", max_steps=4, save_steps=2), train_dataset=Rows(), callbacks=[Spy()]
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    at_2 = _adapter_state(PeftModel.from_pretrained(make_tiny_llama(), tmp_path / "run" / "checkpoint-2"))
    assert restored_at_2.keys() == at_2.keys() and at_2
    assert all(torch.equal(restored_at_2[k], at_2[k]) for k in at_2)
    assert not all(torch.equal(at_2[k], final[k]) for k in at_2)  # step 2 differs from step 4
    for key, value in _adapter_state(fresh).items():
        assert torch.allclose(value, final[key], atol=1e-6), key


def test_save_model_writes_adapter_files(tmp_path):
    from peft_core.integrations.transformers import PeftTrainer

    model = _model()
    trainer = PeftTrainer(model=model, args=_args(tmp_path / "run", max_steps=1, save_strategy="no"), train_dataset=Rows())
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    files = set(os.listdir(tmp_path / "final"))
    assert {"adapter_config.json", "adapter_model.safetensors", "training_args.bin"} <= files
    assert "model.safetensors" not in files


def test_gradient_checkpointing_with_frozen_embeddings_trains_the_adapter(tmp_path):
    from peft_core.integrations.transformers import PeftTrainer

    torch.manual_seed(0)
    model = _model()
    before = _adapter_state(model)
    args = _args(
        tmp_path / "gc", max_steps=2, save_strategy="no",
        gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": True},
    )
    trainer = PeftTrainer(model=model, args=args, train_dataset=Rows())
    assert getattr(model.get_base_model(), "_require_grads_hook", None) is not None
    trainer.train()
    assert model.get_base_model().model.gradient_checkpointing
    after = _adapter_state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    # every adapter tensor moved, including the first layer's (behind the frozen embeddings)
    assert sorted(changed) == sorted(before)
    assert not model.get_base_model().model.embed_tokens.weight.requires_grad
