"""transformers' `Trainer` and `Seq2SeqTrainer` with peft-compat, exactly as with Hugging Face PEFT: no subclass.

Train with a dataset carrying a column the model does not accept, evaluate (the eval loss is reported),
checkpoint (adapter files only), resume from a checkpoint (the adapter comes back), and load the best model
at the end. Tiny Llama / T5 built from configs.
"""

from __future__ import annotations

import os

import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments

import peft
from compat_models import tiny_llama, tiny_t5, token_rows, word_tokenizer
from peft import LoraConfig, TaskType, get_peft_model

ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors"}
FULL_MODEL_FILES = {"model.safetensors", "pytorch_model.bin"}


def _lora_llama(seed: int = 1):
    torch.manual_seed(seed)
    return get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type=TaskType.CAUSAL_LM))


def _adapter(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


def _args(out, **kwargs) -> TrainingArguments:
    defaults = dict(output_dir=str(out), per_device_train_batch_size=4, per_device_eval_batch_size=4, learning_rate=5e-2,
                    report_to=[], use_cpu=True, logging_steps=1, disable_tqdm=True, seed=0, dataloader_num_workers=0)
    defaults.update(kwargs)
    return TrainingArguments(**defaults)


def test_trainer_trains_evaluates_checkpoints_resumes_and_loads_best(tmp_path):
    train = Dataset.from_list(token_rows(16, 10, 128, seed=0))
    evaluation = Dataset.from_list(token_rows(8, 10, 128, seed=1))
    model = _lora_llama()
    assert isinstance(model, peft.PeftModel)
    args = _args(tmp_path / "run", max_steps=4, save_steps=2, eval_strategy="steps", eval_steps=2,
                 load_best_model_at_end=True, metric_for_best_model="eval_loss", save_total_limit=None)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation)
    assert trainer.label_names == ["labels"]
    trainer.train()

    eval_logs = [log for log in trainer.state.log_history if "eval_loss" in log]
    assert [log["step"] for log in eval_logs] == [2, 4]
    for step in (2, 4):
        files = set(os.listdir(tmp_path / "run" / f"checkpoint-{step}"))
        assert ADAPTER_FILES <= files and not FULL_MODEL_FILES & files, files
        saved = load_file(tmp_path / "run" / f"checkpoint-{step}" / "adapter_model.safetensors")
        assert saved and all("lora_" in k for k in saved)

    best = trainer.state.best_model_checkpoint
    assert best in {str(tmp_path / "run" / f"checkpoint-{s}") for s in (2, 4)}
    best_weights = load_file(os.path.join(best, "adapter_model.safetensors"))
    live = {k.replace(".default", ""): v for k, v in _adapter(model).items()}
    assert live.keys() == best_weights.keys()
    assert all(torch.equal(live[k], best_weights[k]) for k in live)  # the best checkpoint's adapter is loaded
    assert "eval_loss" in trainer.evaluate()

    # resume in a new trainer on a freshly initialised model: training continues from checkpoint-2's adapter
    final = load_file(tmp_path / "run" / "checkpoint-4" / "adapter_model.safetensors")
    fresh = _lora_llama(seed=7)
    resumed = Trainer(model=fresh, args=_args(tmp_path / "run", max_steps=4, save_steps=2, eval_strategy="no"),
                      train_dataset=train)
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-2"))
    after = {k.replace(".default", ""): v for k, v in _adapter(fresh).items()}
    assert all(torch.allclose(after[k], final[k], atol=1e-6) for k in final)


def test_trainer_save_model_writes_adapter_only(tmp_path):
    model = _lora_llama()
    trainer = Trainer(model=model, args=_args(tmp_path / "run", max_steps=1, save_strategy="no"),
                      train_dataset=Dataset.from_list(token_rows(4, 8, 128)))
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    files = set(os.listdir(tmp_path / "final"))
    assert ADAPTER_FILES <= files and not FULL_MODEL_FILES & files
    loaded = peft.PeftModel.from_pretrained(tiny_llama(), tmp_path / "final")
    ids = torch.randint(0, 128, (2, 5))
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_seq2seq_trainer_trains_evaluates_and_checkpoints_adapter_only(tmp_path):
    def rows(n, seed):
        g = torch.Generator().manual_seed(seed)
        return [{"input_ids": torch.randint(2, 100, (8,), generator=g).tolist(),
                 "labels": torch.randint(2, 100, (5,), generator=g).tolist(), "text": "x"} for _ in range(n)]

    torch.manual_seed(1)
    model = get_peft_model(tiny_t5(), LoraConfig(r=4, target_modules=["q", "v"], task_type=TaskType.SEQ_2_SEQ_LM))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "s2s"), per_device_train_batch_size=4, per_device_eval_batch_size=4, max_steps=4,
        save_steps=2, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True, report_to=[], use_cpu=True,
        disable_tqdm=True, learning_rate=5e-2, dataloader_num_workers=0, predict_with_generate=False,
    )
    collator = DataCollatorForSeq2Seq(tokenizer=word_tokenizer(100), model=model, label_pad_token_id=-100)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows(16, 0)),
                             eval_dataset=Dataset.from_list(rows(8, 1)), data_collator=collator)
    trainer.train()
    assert [log["step"] for log in trainer.state.log_history if "eval_loss" in log] == [2, 4]
    for step in (2, 4):
        files = set(os.listdir(tmp_path / "s2s" / f"checkpoint-{step}"))
        assert ADAPTER_FILES <= files and not FULL_MODEL_FILES & files, files
    assert trainer.state.best_model_checkpoint is not None
