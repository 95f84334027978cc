"""The method-neutral prompt-learning base (tuners/prompt_learning.py), exercised with two tiny
test-only methods defined here: `toy_prompt` (virtual tokens) and `toy_prefix` (key/value prefixes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict, register_peft_method
from peft_core.errors import AdapterLoadError
from peft_core.tuners.prompt_learning import PromptEncoderBase, PromptLearningConfig, PromptLearningTuner


@dataclass
class ToyPromptConfig(PromptLearningConfig):
    peft_type: str = "TOY_PROMPT"


@dataclass
class ToyPrefixConfig(PromptLearningConfig):
    peft_type: str = "TOY_PREFIX"


class ToyHeadEncoder(PromptEncoderBase):
    """Rows scaled by a trainable scalar while training (a stand-in for a reparameterisation network)."""

    def __init__(self, rows: int, dim: int, with_head: bool) -> None:
        super().__init__(rows, dim)
        self.scale = nn.Parameter(torch.tensor(2.0)) if with_head else None

    @property
    def reparameterized(self) -> bool:
        return self.scale is not None

    def forward(self, indices):
        rows = self.embedding(indices)
        return rows * self.scale if self.scale is not None else rows


class ToyPromptModel(PromptLearningTuner):
    prefix = "tprompt_"  # not toy_...: the toy method owns that start

    def _create_prompt_encoder(self, config, adapter_name, word_embeddings):
        rows = config.num_virtual_tokens * config.num_transformer_submodules
        return ToyHeadEncoder(rows, config.token_dim, with_head=not config.inference_mode)


class ToyPrefixModel(PromptLearningTuner):
    prefix = "tprefix_"
    injects_cache = True

    def _create_prompt_encoder(self, config, adapter_name, word_embeddings):
        return PromptEncoderBase(config.num_virtual_tokens, config.num_layers * 2 * config.token_dim)


register_peft_method(name="toy_prompt", config_cls=ToyPromptConfig, model_cls=ToyPromptModel, prefix="tprompt_", plugin_api=">=1,<2")
register_peft_method(name="toy_prefix", config_cls=ToyPrefixConfig, model_cls=ToyPrefixModel, prefix="tprefix_", plugin_api=">=1,<2")


def _t5():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, initializer_factor=10.0)
    return T5ForConditionalGeneration(config).eval()


def _bert(kind):
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, max_position_embeddings=64, num_labels=2)
    cls = {"SEQ_CLS": transformers.BertForSequenceClassification, "TOKEN_CLS": transformers.BertForTokenClassification,
           "QUESTION_ANS": transformers.BertForQuestionAnswering, "FEATURE_EXTRACTION": transformers.BertModel}[kind]
    return cls(config).eval()


def _out(o):
    for name in ("logits", "start_logits", "last_hidden_state"):
        if getattr(o, name, None) is not None:
            return getattr(o, name)


@pytest.fixture
def batch():
    torch.manual_seed(3)
    ids = torch.randint(2, 128, (2, 5))
    mask = torch.ones_like(ids)
    mask[0, 0] = 0
    return ids, mask


def test_config_fields_are_filled_from_the_model(tiny_llama):
    model = get_peft_model(tiny_llama, ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    config = model.peft_config["default"]
    assert config.is_prompt_learning
    assert (config.token_dim, config.num_layers, config.num_attention_heads, config.num_transformer_submodules) == (32, 2, 4, 1)
    t5 = get_peft_model(_t5(), ToyPromptConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3)).peft_config["default"]
    assert (t5.token_dim, t5.num_layers, t5.num_attention_heads, t5.num_transformer_submodules) == (32, 2, 4, 2)
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        get_peft_model(nn.Linear(2, 2), ToyPromptConfig())


def test_causal_lm_forward_prepends_rows_extends_mask_and_labels(tiny_llama, batch):
    ids, mask = batch
    model = get_peft_model(tiny_llama, ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)).eval()
    encoder = model.base_model.prompt_encoder["default"]
    rows = (encoder.embedding.weight * encoder.scale).detach()
    base = model.get_base_model()
    embeds = torch.cat([rows.expand(2, -1, -1), base.get_input_embeddings()(ids)], 1)
    full_mask = torch.cat([torch.ones(2, 3, dtype=mask.dtype), mask], 1)
    labels = torch.cat([torch.full((2, 3), -100), ids], 1)
    with torch.no_grad():
        expected = base(inputs_embeds=embeds, attention_mask=full_mask, labels=labels)
        got = model(ids, mask, labels=ids)  # positional arguments follow the model's signature
        with pytest.warns(UserWarning, match="position_ids"):
            again = model(input_ids=ids, attention_mask=mask, position_ids=torch.arange(5).expand(2, -1))
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.loss, expected.loss)
    assert torch.equal(again.logits, expected.logits)


def test_training_changes_only_the_prompt_encoder(tiny_llama, batch):
    ids, mask = batch
    model = get_peft_model(tiny_llama, ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["base_model.prompt_encoder.default.embedding.weight", "base_model.prompt_encoder.default.scale"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
    opt.step()
    assert sorted(n for n, p in model.named_parameters() if not torch.equal(p, before[n])) == trainable


def test_saved_state_is_the_final_matrix_and_reloads(tiny_llama, batch, tmp_path):
    from core_test_models import make_tiny_llama

    ids, mask = batch
    model = get_peft_model(tiny_llama, ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)).eval()
    state = get_peft_model_state_dict(model)
    encoder = model.base_model.prompt_encoder["default"]
    assert list(state) == ["prompt_embeddings"]
    assert torch.equal(state["prompt_embeddings"], encoder.embedding.weight * encoder.scale)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(make_tiny_llama(), tmp_path)
    assert loaded.base_model.prompt_encoder["default"].scale is None  # only the matrix is loaded
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids, attention_mask=mask).logits, expected)
    with pytest.raises(ValueError, match="can't be loaded as trainable"):
        PeftModel.from_pretrained(make_tiny_llama(), tmp_path, is_trainable=True)
    with pytest.raises(ValueError, match="reparameterisation"):
        model.base_model.load_adapter_state_dict("default", state, strict=True)
    with pytest.raises(AdapterLoadError, match="unexpected keys"):
        loaded.base_model.load_adapter_state_dict("default", {**state, "base_model.model.x.weight": torch.ones(1)}, True)
    with pytest.raises(AdapterLoadError, match="no 'prompt_embeddings'"):
        loaded.base_model.load_adapter_state_dict("default", {}, strict=True)


def test_classifier_head_is_saved_under_hf_keys(batch, tmp_path):
    ids, mask = batch
    model = get_peft_model(_bert("SEQ_CLS"), ToyPromptConfig(task_type="SEQ_CLS", num_virtual_tokens=2)).eval()
    with torch.no_grad():
        model.base_model.model.classifier.modules_to_save["default"].weight.mul_(3)
        expected = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
    assert sorted(get_peft_model_state_dict(model)) == [
        "base_model.classifier.bias",
        "base_model.classifier.weight",
        "prompt_embeddings",
    ]
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(_bert("SEQ_CLS"), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids, attention_mask=mask).logits, expected)


@pytest.mark.parametrize("task", ["SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
@pytest.mark.parametrize("config_cls", [ToyPromptConfig, ToyPrefixConfig])
def test_disable_adapter_on_encoder_task_models(task, config_cls, batch):
    ids, mask = batch
    model = get_peft_model(_bert(task), config_cls(task_type=task, num_virtual_tokens=2)).eval()
    with torch.no_grad():
        base = _out(_bert(task)(input_ids=ids, attention_mask=mask))
        with model.disable_adapter():
            assert torch.equal(_out(model(input_ids=ids, attention_mask=mask)), base)
        adapted = _out(model(input_ids=ids, attention_mask=mask))
    assert not torch.equal(adapted, base)


def _greedy(model, ids, mask, seq2seq):
    with torch.no_grad():
        if seq2seq:
            seq = torch.zeros(ids.shape[0], 1, dtype=torch.long)
            for _ in range(4):
                nxt = model(input_ids=ids, attention_mask=mask, decoder_input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], 1)
            return seq
        seq = ids
        for _ in range(4):
            nxt = model(input_ids=seq, attention_mask=torch.ones_like(seq)).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        return seq


@pytest.mark.parametrize("config_cls", [ToyPromptConfig, ToyPrefixConfig])
def test_generate_equals_greedy_forward(config_cls, tiny_llama, batch):
    ids, mask = batch
    for base, task in ((tiny_llama, "CAUSAL_LM"), (_t5(), "SEQ_2_SEQ_LM")):
        model = get_peft_model(base, config_cls(task_type=task, num_virtual_tokens=3)).eval()
        seq2seq = task == "SEQ_2_SEQ_LM"
        given_mask = mask if seq2seq else torch.ones_like(ids)
        got = model.generate(input_ids=ids, attention_mask=given_mask, max_new_tokens=4, do_sample=False)
        assert torch.equal(got, _greedy(model, ids, given_mask, seq2seq))
        with model.disable_adapter():
            plain = model.generate(input_ids=ids, attention_mask=given_mask, max_new_tokens=4, do_sample=False)
        assert torch.equal(plain, base.generate(input_ids=ids, attention_mask=given_mask, max_new_tokens=4, do_sample=False))


def test_prefix_cache_layout(tiny_llama):
    model = get_peft_model(tiny_llama, ToyPrefixConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    matrix = model.base_model.prompt_matrix()
    cache = model.base_model.get_prompt(batch_size=2)
    assert cache.get_seq_length() == 3
    config = model.peft_config["default"]
    assert (config.token_dim, config.num_attention_heads) == (16, 2)  # sized for the 2 key/value heads (GQA)
    key1 = cache.layers[1].keys  # layer 1 key = block 2 of each row, split into 2 heads of 8
    assert key1.shape == (2, 2, 3, 8)
    assert torch.equal(key1[0], matrix[:, 32:48].reshape(3, 2, 8).transpose(0, 1))
    t5 = get_peft_model(_t5(), ToyPrefixConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=3))
    cache = t5.base_model.get_prompt(batch_size=1)
    matrix = t5.base_model.prompt_matrix()
    assert cache.cross_attention_cache.get_seq_length() == 0
    # encoder-decoder layout: decoder layer l reads blocks 4l and 4l+1 of the doubled block sequence
    assert torch.equal(cache.self_attention_cache.layers[1].keys[0], matrix[:, 0:32].reshape(3, 4, 8).transpose(0, 1))


def test_refusals_and_adapter_management(tiny_llama, batch):
    ids, mask = batch
    model = get_peft_model(tiny_llama, ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=2)).eval()
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        model(input_ids=ids, attention_mask=mask, adapter_names=["default", "__base__"])
    with pytest.raises(ValueError, match="nothing to\\s+merge"):
        model.merge_and_unload()
    model.add_adapter("second", ToyPromptConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
    assert not any(p.requires_grad for p in model.base_model.prompt_encoder["second"].parameters())
    with pytest.raises(ValueError, match="only one"):
        model.set_adapter(["default", "second"])
    model.set_adapter("second")
    assert all(p.requires_grad for p in model.base_model.prompt_encoder["second"].parameters())
    assert not any(p.requires_grad for p in model.base_model.prompt_encoder["default"].parameters())
    model.delete_adapter("second")
    assert list(model.base_model.prompt_encoder) == ["default"] and model.active_adapters == ["default"]
    unloaded = model.unload()
    assert not any(p.requires_grad for p in unloaded.parameters())


def test_set_adapter_trains_only_an_encoders_trainable_parameters():
    """An encoder with a fixed part (its `trainable_parameters` leave it out) keeps it frozen when active."""
    from peft_core.tuners.prompt_learning import PromptEncoderDict

    class Corrected(PromptEncoderBase):
        def __init__(self) -> None:
            super().__init__(3, 4)
            self.correction = nn.Parameter(torch.zeros(3, 4))

        def trainable_parameters(self):
            return iter([self.correction])

    encoders = PromptEncoderDict()
    encoders["a"], encoders["b"] = Corrected(), Corrected()
    encoders.set_adapter("a")
    assert encoders["a"].correction.requires_grad and not encoders["a"].embedding.weight.requires_grad
    assert not any(p.requires_grad for p in encoders["b"].parameters())
    encoders.set_adapter("a", inference_mode=True)
    assert not any(p.requires_grad for p in encoders.parameters())
