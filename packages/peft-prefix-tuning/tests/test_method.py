"""Prefix tuning's own behaviour: the cache layout (decoder, BERT backbone), which tensors train, the task
kinds the kit's cases leave out, generation with padding, the zero start, refusals.

Training steps, save/load, disabling, several adapters and the merge / mixed-batch refusals are the
conformance kit's checks (`tests/test_conformance.py`).
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing.tasks import assert_disabled_is_base, batch, greedy_by_forward, task_model

from peft_core import ConfigError, get_peft_model
from peft_prefix_tuning import PrefixTuningConfig


def _model(task="CAUSAL_LM", **kwargs):
    torch.manual_seed(1)
    return get_peft_model(task_model(task), PrefixTuningConfig(task_type=task, num_virtual_tokens=3, **kwargs))


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
        expected = task_model("CAUSAL_LM")(input_ids=ids, attention_mask=full_mask, cache=cache).logits
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


@pytest.mark.parametrize("task", ["TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
def test_disable_adapter_gives_the_base_model(task):
    """The task kinds the kit's cases don't cover (its cases: CAUSAL_LM, SEQ_2_SEQ_LM, SEQ_CLS)."""
    assert_disabled_is_base(_model(task).eval(), task)


def test_bert_classifier_gets_the_prefix_through_its_backbone():
    model = _model("SEQ_CLS").eval()
    ids, mask = batch()
    bert = task_model("SEQ_CLS")
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
    with pytest.raises(ConfigError, match="init_weights"):
        PrefixTuningConfig(num_virtual_tokens=2, init_weights="ones")
    base = task_model("CAUSAL_LM")
    base.gradient_checkpointing_enable()
    with pytest.raises(ValueError, match="gradient checkpointing"):
        get_peft_model(base, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2))
