"""Prefix tuning's own behaviour: the cache layout, training, save/load, disable, encoders, refusals."""

from __future__ import annotations

import pytest
import torch
from _prefix_tuning_support import MAKERS, batch, greedy_by_forward, make_bert, make_llama, run

from peft_core import PeftModel, get_peft_model
from peft_prefix_tuning import PrefixTuningConfig


def _model(task="CAUSAL_LM", **kwargs):
    torch.manual_seed(1)
    return get_peft_model(MAKERS[task](), PrefixTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs))


def _prefix_cache(matrix, layers, heads, head_dim, batch_size):
    """Independent layout: row = [k_0 | v_0 | k_1 | v_1 ...], each split into heads."""
    from transformers import DynamicCache

    data = []
    for layer in range(layers):
        width = heads * head_dim
        k = matrix[:, (2 * layer) * width : (2 * layer + 1) * width].reshape(-1, heads, head_dim).transpose(0, 1)
        v = matrix[:, (2 * layer + 1) * width : (2 * layer + 2) * width].reshape(-1, heads, head_dim).transpose(0, 1)
        data.append((k.unsqueeze(0).repeat(batch_size, 1, 1, 1), v.unsqueeze(0).repeat(batch_size, 1, 1, 1)))
    return DynamicCache(data)


def test_forward_equals_the_base_model_with_the_prefix_cache():
    model = _model().eval()
    ids, mask = batch()
    matrix = model.base_model.prompt_matrix().detach()
    cache = _prefix_cache(matrix, layers=2, heads=2, head_dim=8, batch_size=2)
    full_mask = torch.cat([torch.ones(2, 3, dtype=mask.dtype), mask], 1)
    with torch.no_grad():
        expected = make_llama()(input_ids=ids, attention_mask=full_mask, cache=cache).logits
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, expected)
        # position ids are shifted past the prefix
        positions = torch.arange(5).unsqueeze(0).expand(2, -1)
        assert torch.equal(model(input_ids=ids, attention_mask=mask, position_ids=positions).logits, expected)


@pytest.mark.parametrize("projection", [False, True])
def test_training_changes_only_the_prefix_encoder(projection):
    model = _model(prefix_projection=projection)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable and all(n.startswith("base_model.prompt_encoder.default.") for n in trainable)
    assert any("transform" in n for n in trainable) == projection
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids, mask = batch()
    model.train()
    for _ in range(3):
        model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p, before[n]))
    assert changed == trainable


def test_seq2seq_training_step_and_round_trip(tmp_path):
    model = _model("SEQ_2_SEQ_LM", prefix_projection=True)
    ids, mask = batch()
    loss = model(input_ids=ids, attention_mask=mask, labels=ids[:, :3].contiguous()).loss
    loss.backward()
    assert model.base_model.prompt_encoder["default"].embedding.weight.grad is not None
    model.eval()
    expected = run(model, "SEQ_2_SEQ_LM")
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(MAKERS["SEQ_2_SEQ_LM"](), tmp_path)
    assert torch.allclose(run(loaded, "SEQ_2_SEQ_LM"), expected, atol=1e-5)
    with pytest.raises(ValueError, match="can't be loaded as trainable"):
        PeftModel.from_pretrained(MAKERS["SEQ_2_SEQ_LM"](), tmp_path, is_trainable=True)


def test_round_trip_is_exact_without_projection(tmp_path):
    model = _model().eval()
    expected = run(model, "CAUSAL_LM")
    model.save_pretrained(tmp_path)
    assert torch.equal(run(PeftModel.from_pretrained(make_llama(), tmp_path), "CAUSAL_LM"), expected)


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
def test_disable_adapter_gives_the_base_model(task):
    model = _model(task).eval()
    base = MAKERS[task]()
    with model.disable_adapter():
        assert torch.equal(run(model, task), run(base, task))
    assert not torch.equal(run(model, task), run(base, task))


def test_bert_classifier_gets_the_prefix_through_its_backbone():
    model = _model("SEQ_CLS").eval()
    ids, mask = batch()
    bert = make_bert("SEQ_CLS")
    head = model.base_model.model.classifier.modules_to_save["default"]
    cache = _prefix_cache(model.base_model.prompt_matrix().detach(), layers=2, heads=4, head_dim=8, batch_size=2)
    full_mask = torch.cat([torch.ones(2, 3, dtype=mask.dtype), mask], 1)
    with torch.no_grad():
        pooled = bert.bert(input_ids=ids, attention_mask=full_mask, cache=cache).pooler_output
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, head(pooled))


def test_generate_with_padding_follows_forward_with_positions():
    model = _model().eval()
    ids, mask = batch()
    got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    # reference: forward with the positions generate uses (a running count that skips padding)
    seq, am = ids.clone(), mask.clone()
    with torch.no_grad():
        for _ in range(4):
            positions = (am.cumsum(-1) - 1).clamp(min=0)
            nxt = model(input_ids=seq, attention_mask=am, position_ids=positions).logits[:, -1].argmax(-1, keepdim=True)
            seq, am = torch.cat([seq, nxt], 1), torch.cat([am, torch.ones_like(nxt)], 1)
    assert torch.equal(got[1], seq[1])  # the unpadded row: same positions either way
    assert torch.equal(
        model.generate(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                       max_new_tokens=4, do_sample=False),
        seq,
    )
    assert torch.equal(
        _model("SEQ_2_SEQ_LM").eval().generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False),
        greedy_by_forward(_model("SEQ_2_SEQ_LM").eval(), "SEQ_2_SEQ_LM"),
    )


def test_zero_init_and_refusals():
    model = _model(init_weights="zero")
    assert not model.base_model.prompt_matrix().any()
    projected = _model(init_weights="zero", prefix_projection=True)
    assert not projected.base_model.prompt_matrix().any()
    with pytest.raises(ValueError, match="init_weights"):
        PrefixTuningConfig(num_virtual_tokens=2, init_weights="ones")
    base = make_llama()
    base.gradient_checkpointing_enable()
    with pytest.raises(ValueError, match="gradient checkpointing"):
        get_peft_model(base, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
    ids, mask = batch()
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        model.eval()(input_ids=ids, attention_mask=mask, adapter_names=["default", "__base__"])
    with pytest.raises(ValueError, match="nothing to\\s+merge"):
        model.merge_adapter()


def test_several_adapters(tmp_path):
    model = _model().eval()
    model.add_adapter("other", PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
    first = run(model, "CAUSAL_LM")
    model.set_adapter("other")
    second = run(model, "CAUSAL_LM")
    assert not torch.equal(first, second)
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(make_llama(), tmp_path)
    loaded.load_adapter(tmp_path / "other", "other")
    assert torch.equal(run(loaded, "CAUSAL_LM"), first)
    loaded.set_adapter("other")
    assert torch.equal(run(loaded, "CAUSAL_LM"), second)
