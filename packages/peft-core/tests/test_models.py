"""Point 5: façade and task wrappers on a tiny transformers Llama, plus mixed-adapter batches."""

from __future__ import annotations

import copy

import pytest
import torch

from peft_core import (
    PeftModel,
    PeftModelForCausalLM,
    PeftModelForFeatureExtraction,
    PeftModelForQuestionAnswering,
    PeftModelForSeq2SeqLM,
    PeftModelForSequenceClassification,
    PeftModelForTokenClassification,
    TaskType,
    get_peft_model,
)


@pytest.mark.parametrize(
    ("task", "cls"),
    [
        (None, PeftModel),
        (TaskType.CAUSAL_LM, PeftModelForCausalLM),
        ("SEQ_2_SEQ_LM", PeftModelForSeq2SeqLM),
        ("SEQ_CLS", PeftModelForSequenceClassification),
        ("TOKEN_CLS", PeftModelForTokenClassification),
        ("QUESTION_ANS", PeftModelForQuestionAnswering),
        ("FEATURE_EXTRACTION", PeftModelForFeatureExtraction),
    ],
)
def test_wrapper_follows_task_type(toy, mlp, task, cls):
    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"], task_type=task))
    assert type(model) is cls


def test_causal_lm_forward_generate_and_keys(toy, tiny_llama, input_ids):
    base_logits = tiny_llama(input_ids).logits
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False))
    assert model.base_model.model is tiny_llama and model.get_base_model() is tiny_llama
    assert "base_model.model.model.layers.0.self_attn.q_proj.toy_A.default.weight" in model.state_dict()
    out = model(input_ids=input_ids, labels=input_ids)
    assert out.loss is not None and not torch.allclose(out.logits, base_logits)
    with model.disable_adapter():
        assert torch.allclose(model(input_ids=input_ids).logits, base_logits)
    generated = model.generate(input_ids=input_ids, max_new_tokens=3, do_sample=False)
    assert generated.shape == (2, 10)
    assert model.config.model_type == "llama"  # attribute access falls through to the base model


@pytest.mark.parametrize(
    ("cls", "labels"),
    [
        (PeftModelForCausalLM, ["labels"]),
        (PeftModelForSeq2SeqLM, ["labels"]),
        (PeftModelForSequenceClassification, ["labels"]),
        (PeftModelForTokenClassification, ["labels"]),
        (PeftModelForQuestionAnswering, ["start_positions", "end_positions"]),
        (PeftModelForFeatureExtraction, []),
    ],
)
def test_task_forward_names_the_task_arguments(cls, labels):
    import inspect

    params = list(inspect.signature(cls.forward).parameters)  # what Trainer's find_labels reads
    assert params[:4] == ["self", "input_ids", "attention_mask", "inputs_embeds"] and params[-1] == "kwargs"
    assert [p for p in params if "label" in p or p.endswith("_positions")] == labels


def test_task_forward_passes_positional_and_given_arguments_only(toy, tiny_llama, input_ids):
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False))
    mask = torch.ones_like(input_ids)
    by_keyword = model(input_ids=input_ids, attention_mask=mask, labels=input_ids)
    by_position = model(input_ids, mask, None, input_ids)  # None: not passed on, the model's default holds
    assert torch.equal(by_position.logits, by_keyword.logits) and torch.equal(by_position.loss, by_keyword.loss)
    with pytest.raises(TypeError):
        model(input_ids, input_ids=input_ids)


def test_causal_lm_save_load_round_trip(toy, tiny_llama, input_ids, tmp_path):
    from core_test_models import make_tiny_llama

    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False))
    expected = model(input_ids=input_ids).logits
    model.save_pretrained(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "library_name: peft" in readme and "pipeline_tag: text-generation" in readme and "- transformers" in readme
    loaded = PeftModel.from_pretrained(make_tiny_llama(seed=0), tmp_path)
    assert type(loaded) is PeftModelForCausalLM
    assert torch.equal(loaded(input_ids=input_ids).logits, expected)


def test_sequence_classification_trains_its_head(toy):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    base = LlamaForSequenceClassification(
        LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_labels=3, pad_token_id=0)
    )
    config = toy.ToyConfig(task_type="SEQ_CLS", target_modules=["q_proj"])
    model = get_peft_model(base, config)
    assert set(config.modules_to_save) == {"classifier", "score"}
    assert model.base_model.model.score.modules_to_save["default"].weight.requires_grad


def test_base_model_name_is_recorded(toy, tiny_llama):
    tiny_llama.config.name_or_path = "org/tiny-llama"
    config = toy.ToyConfig(task_type="CAUSAL_LM")
    get_peft_model(tiny_llama, config, revision="v1")
    assert config.base_model_name_or_path == "org/tiny-llama" and config.revision == "v1"


def test_empty_name_or_path_becomes_none(toy, tiny_llama):
    config = toy.ToyConfig(task_type="CAUSAL_LM")
    get_peft_model(tiny_llama, config)
    assert config.base_model_name_or_path is None


def test_mixed_adapter_batch_equals_per_row_runs(toy, tiny_llama):
    torch.manual_seed(3)
    ids = torch.randint(0, 128, (5, 6))
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False, modules_to_save=["lm_head"]))
    model.add_adapter("b", toy.ToyConfig(task_type="CAUSAL_LM", target_modules=["k_proj"], init_weights=False, modules_to_save=["lm_head"]))
    with torch.no_grad():
        model.base_model.model.lm_head.modules_to_save["b"].weight.mul_(1.5)
    model.eval()
    names = ["default", "b", "__base__", "b", "default"]
    mixed = model(input_ids=ids, adapter_names=names).logits
    for row, name in enumerate(names):
        if name == "__base__":
            with model.disable_adapter():
                ref = model(input_ids=ids[row : row + 1]).logits
        else:
            model.set_adapter(name)
            ref = model(input_ids=ids[row : row + 1]).logits
        assert torch.allclose(mixed[row], ref[0], atol=1e-5), name


def test_mixed_batch_generate(toy, tiny_llama):
    ids = torch.randint(0, 128, (2, 4))
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False)).eval()
    out = model.generate(input_ids=ids, adapter_names=["default", "__base__"], max_new_tokens=2, do_sample=False)
    with model.disable_adapter():
        base_row = model.generate(input_ids=ids[1:], max_new_tokens=2, do_sample=False)
    assert torch.equal(out[1:], base_row)


def test_mixed_batch_errors(toy, tiny_llama, input_ids):
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM"))
    model.train()
    with pytest.raises(ValueError, match="only supported in eval mode"):
        model(input_ids=input_ids, adapter_names=["default", "default"])
    model.eval()
    with pytest.raises(ValueError, match="unknown adapters"):
        model(input_ids=input_ids, adapter_names=["default", "nope"])
    with pytest.raises(ValueError, match="one adapter name per row"):
        model(input_ids=input_ids, adapter_names=["default"])
    model.merge_adapter()
    with pytest.raises(ValueError, match="unmerged"):
        model(input_ids=input_ids, adapter_names=["default", "default"])


def test_mixed_batch_refused_for_layers_without_support(toy, mlp):
    class NoMix(toy.ToyLinear):
        supports_mixed_batch = False

    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"])).eval()
    model.base_model.model.lin0.__class__ = NoMix
    with pytest.raises(ValueError, match="can't run a mixed-adapter batch"):
        model(torch.randn(2, 8), adapter_names=["default", "default"])


def test_get_peft_model_warns_on_an_already_adapted_model(toy, mlp):
    get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.warns(UserWarning, match="already has adapter layers"):
        get_peft_model(mlp, toy.ToyConfig(target_modules=["lin1"]))


def test_adding_another_method_is_refused(toy, mlp):
    from dataclasses import dataclass

    from peft_core import PeftConfig

    @dataclass
    class Other(PeftConfig):
        peft_type: str = "OTHER"

    model = get_peft_model(mlp, toy.ToyConfig(target_modules=["lin0"]))
    with pytest.raises(ValueError, match="single method"):
        model.add_adapter("x", Other())


def test_training_updates_only_the_adapter(toy, tiny_llama, input_ids):
    base_before = copy.deepcopy(tiny_llama.state_dict())
    model = get_peft_model(tiny_llama, toy.ToyConfig(task_type="CAUSAL_LM", init_weights=False))
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    merged = model.unload().state_dict()
    assert all(torch.equal(merged[k], v) for k, v in base_before.items())
