"""Prompt tuning's own behaviour: training, save/load, disable, initialisations, refusals."""

from __future__ import annotations

import builtins

import pytest
import torch
from peft_core.testing.tasks import assert_disabled_is_base, batch, greedy_by_forward, run, task_model

from peft_core import ConfigError, PeftModel, get_peft_model
from peft_prompt_tuning import PromptTuningConfig


def _model(task="CAUSAL_LM", **kwargs):
    torch.manual_seed(1)
    return get_peft_model(task_model(task), PromptTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs))


def test_forward_prepends_the_virtual_tokens():
    model = _model().eval()
    ids, mask = batch()
    base = task_model("CAUSAL_LM")
    prompts = model.base_model.prompt_encoder["default"].embedding.weight
    embeds = torch.cat([prompts.expand(2, -1, -1), base.get_input_embeddings()(ids)], 1)
    with torch.no_grad():
        expected = base(inputs_embeds=embeds, attention_mask=torch.cat([torch.ones(2, 3, dtype=mask.dtype), mask], 1))
        got = model(input_ids=ids, attention_mask=mask, labels=ids)
    assert torch.equal(got.logits, expected.logits)
    # labels get -100 for the virtual tokens: the last virtual token predicts the first real one
    logits = expected.logits[:, 2:-1]
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, 128), ids.reshape(-1))
    assert torch.allclose(got.loss, ref, atol=1e-6)


def test_training_changes_only_the_prompt():
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["base_model.prompt_encoder.default.embedding.weight"]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids, mask = batch()
    model.train()
    for _ in range(3):
        loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed == trainable


def test_save_load_round_trip_and_refusals(tmp_path):
    model = _model(prompt_tuning_init="SAMPLE_VOCAB").eval()
    expected = run(model, "CAUSAL_LM")
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path)
    assert torch.equal(run(loaded, "CAUSAL_LM"), expected)
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ValueError, match="can't be loaded as trainable"):
        PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path, is_trainable=True)
    with pytest.raises(ValueError, match="nothing to\\s+merge"):
        loaded.merge_and_unload()
    ids, mask = batch()
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        loaded(input_ids=ids, attention_mask=mask, adapter_names=["default", "__base__"])


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
def test_disable_adapter_gives_the_base_model(task):
    assert_disabled_is_base(_model(task).eval(), task)


def test_generate_with_disabled_adapter_is_the_base_generate():
    model = _model().eval()
    ids, mask = batch()
    with model.disable_adapter():
        got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False)
    assert torch.equal(got, task_model("CAUSAL_LM").generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False))


def test_generate_seq2seq_and_causal_follow_forward():
    for task in ("CAUSAL_LM", "SEQ_2_SEQ_LM"):
        model = _model(task).eval()
        ids, mask = batch()
        got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
        assert torch.equal(got, greedy_by_forward(model, task))


def test_sample_vocab_rows_are_vocabulary_embeddings():
    model = _model(prompt_tuning_init="SAMPLE_VOCAB")
    rows = model.base_model.prompt_encoder["default"].embedding.weight
    vocab = model.get_base_model().get_input_embeddings().weight
    for row in rows:
        assert (vocab == row).all(-1).any()


def _save_tokenizer(directory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "hello", "world", "good", "movie"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(directory)


def _text_init(tokenizer_dir, text, **kwargs):
    """Prompt-tuning config fields for a causal LM whose virtual tokens start from `text`'s embeddings."""
    return dict(
        task_type="CAUSAL_LM",
        prompt_tuning_init="TEXT",
        prompt_tuning_init_text=text,
        tokenizer_name_or_path=str(tokenizer_dir),
        **kwargs,
    )


def test_text_init_repeats_the_text_tokens(tmp_path):
    _save_tokenizer(tmp_path)
    torch.manual_seed(1)
    kwargs = _text_init(tmp_path, "good movie", num_virtual_tokens=5)
    model = get_peft_model(task_model("CAUSAL_LM"), PromptTuningConfig(**kwargs))
    rows = model.base_model.prompt_encoder["default"].embedding.weight
    vocab = model.get_base_model().get_input_embeddings().weight
    assert torch.equal(rows, vocab[[4, 5, 4, 5, 4]])
    # Hugging Face PEFT initialises the same rows from the same tokenizer
    import peft

    torch.manual_seed(1)
    hf = peft.get_peft_model(task_model("CAUSAL_LM"), peft.PromptTuningConfig(**kwargs))
    assert torch.equal(hf.prompt_encoder["default"].embedding.weight, rows)


def test_text_init_without_transformers_names_the_extra(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    config = PromptTuningConfig(**_text_init(tmp_path, "hello", num_virtual_tokens=2))
    model = task_model("CAUSAL_LM")
    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ImportError, match=r"peft-prompt-tuning\[text-init\]"):
        get_peft_model(model, config)


def test_config_validation():
    with pytest.raises(ConfigError, match="tokenizer_name_or_path"):
        PromptTuningConfig(num_virtual_tokens=2, prompt_tuning_init="TEXT", prompt_tuning_init_text="x")
    with pytest.raises(ConfigError, match="prompt_tuning_init_text"):
        PromptTuningConfig(num_virtual_tokens=2, prompt_tuning_init="TEXT", tokenizer_name_or_path="t")
    with pytest.raises(ConfigError, match="tokenizer_kwargs"):
        PromptTuningConfig(num_virtual_tokens=2, tokenizer_kwargs={"a": 1})
    with pytest.raises(ConfigError, match="prompt_tuning_init must be one of"):
        PromptTuningConfig(num_virtual_tokens=2, prompt_tuning_init="text")


def test_several_adapters(tmp_path):
    model = _model().eval()
    model.add_adapter("other", PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    first = run(model, "CAUSAL_LM")
    model.set_adapter("other")
    second = run(model, "CAUSAL_LM")
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="only one"):
        model.set_adapter(["default", "other"])
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path)
    loaded.load_adapter(tmp_path / "other", "other")
    loaded.set_adapter("other")
    assert torch.equal(run(loaded, "CAUSAL_LM"), second)
    loaded.delete_adapter("other")
    assert "other" not in loaded.base_model.prompt_encoder
    assert torch.equal(run(loaded, "CAUSAL_LM"), first)


def test_inputs_embeds_and_encoder_classifier_token_types():
    model = _model("SEQ_CLS").eval()
    ids, mask = batch()
    embeds = task_model("SEQ_CLS").get_input_embeddings()(ids)
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = model(inputs_embeds=embeds, attention_mask=mask).logits
        c = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
    assert torch.equal(a, b) and torch.equal(a, c)
