"""What is particular to CPT: its loss (labels of the context and of the input, decay weights), the projected
correction and its gradient mask, against independent computations and Hugging Face PEFT (forward, loss,
gradients and training steps). The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from peft_core import ConfigError, PeftModel, get_peft_method, get_peft_model
from peft_core.testing import hf
from peft_core.testing.tasks import batch, task_model

from peft_cpt import CPTConfig, context_labels_and_types, correction_radius, cpt_loss

torch.set_num_threads(1)

CONTEXT = dict(cpt_token_ids=[5, 17, 9, 42, 7, 18, 10, 43], cpt_tokens_type_mask=[1, 2, 3, 4, 5, 6, 7, 8])


def _cpt(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(task_model("CAUSAL_LM"), CPTConfig(task_type="CAUSAL_LM", **{**CONTEXT, **kwargs}))


def _query(seed: int = 1):
    """Two rows: input template, input, output template, label (types 1, 2, 3, 4 per row)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 128, (2, 6), generator=gen)
    types = torch.tensor([[1, 2, 2, 3, 4, 4], [1, 2, 3, 4, 4, 4]])
    return ids, types


def test_registered_with_its_entry_point():
    method = get_peft_method("cpt")
    assert method.config_cls is CPTConfig and method.prefix == "cpt_"


def test_config_follows_the_context():
    config = CPTConfig(task_type="CAUSAL_LM", cpt_token_ids=[3, 4, 5], num_virtual_tokens=9)
    assert config.num_virtual_tokens == 3 and config.cpt_mask == [1, 1, 1] and config.cpt_tokens_type_mask == [1, 1, 1]
    assert config.num_transformer_submodules == 1
    with pytest.raises(ConfigError, match="CAUSAL_LM"):
        CPTConfig()


def test_labels_and_types_cover_the_context_and_the_shifted_input():
    config = CPTConfig(task_type="CAUSAL_LM", **CONTEXT)
    ids, types = _query()
    labels, all_types = context_labels_and_types(config, ids, types)
    assert torch.equal(all_types[0], torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 12]))
    # label positions: the context's types 4 and 8 and the input's (shifted) type 12
    expected = torch.full((14,), -100)
    expected[3], expected[7] = 42, 43
    expected[12:] = ids[0, 4:]
    assert torch.equal(labels[0], expected)
    assert torch.equal(types, torch.tensor([[1, 2, 2, 3, 4, 4], [1, 2, 3, 4, 4, 4]]))  # the caller's mask is untouched


@pytest.mark.parametrize(("kind", "factor"), [("none", 1.0), ("decay", 0.5)])
def test_loss_is_the_weighted_mean_over_label_positions(kind, factor):
    config = CPTConfig(task_type="CAUSAL_LM", opt_weighted_loss_type=kind, opt_loss_decay_factor=factor, **CONTEXT)
    ids, types = _query()
    labels, all_types = context_labels_and_types(config, ids, types)
    logits = torch.randn(2, 14, 128, generator=torch.Generator().manual_seed(2))
    terms, weights = [], []
    for row in range(2):
        for pos in range(13):  # predicts position pos + 1
            target = int(labels[row, pos + 1])
            if target == -100:
                continue
            terms.append(-torch.log_softmax(logits[row, pos].double(), -1)[target])
            example = int(all_types[row, pos + 1]) // 4  # 1, 2 for the context, 3 for the input
            weights.append(factor ** (3 - example) if kind == "decay" else 1.0)
    expected = sum(w * t for w, t in zip(weights, terms)) / len(terms)
    torch.testing.assert_close(cpt_loss(logits, labels, all_types, config).double(), expected, rtol=1e-5, atol=1e-6)


def test_default_input_types_make_every_input_token_a_label_of_the_last_example():
    config = CPTConfig(task_type="CAUSAL_LM", **CONTEXT)
    ids, _ = _query()
    labels, types = context_labels_and_types(config, ids, None)
    assert (types[:, 8:] == 12).all() and torch.equal(labels[:, 8:], ids)


def test_the_correction_stays_in_its_ball_and_only_templates_and_inputs_train():
    model = _cpt()
    encoder = model.base_model.prompt_encoder["default"]
    assert not encoder.embedding.weight.requires_grad and encoder.delta_embedding.weight.requires_grad
    radius = correction_radius(model.peft_config["default"])
    scale = math.sqrt(32 / 2048)
    assert torch.allclose(radius[[0, 2, 4, 6]], torch.tensor(0.1 * scale)) and torch.allclose(radius[[1, 5]], torch.tensor(0.1 * scale))
    assert (radius[[3, 7]] == 1e-10).all()
    with torch.no_grad():
        encoder.delta_embedding.weight.copy_(torch.randn(8, 32, generator=torch.Generator().manual_seed(3)))
        encoder.delta_embedding.weight[2] *= 1e-4  # already inside its ball
    inside = encoder.delta_embedding.weight[2].clone()
    ids, types = _query()
    model.eval()
    before = encoder.delta_embedding.weight.detach().clone()
    with torch.no_grad():
        model(input_ids=ids)
    assert torch.equal(encoder.delta_embedding.weight, before)  # evaluation leaves the stored tensor alone
    model.train()
    out = model(input_ids=ids, labels=ids, input_type_mask=types)
    norms = encoder.delta_embedding.weight.detach().norm(dim=1)
    assert (norms <= radius * (1 + 1e-5)).all() and torch.equal(encoder.delta_embedding.weight[2], inside)
    out.loss.backward()
    grad = encoder.delta_embedding.weight.grad
    assert (grad[[3, 7]] == 0).all() and (grad[[0, 1, 2, 4, 5, 6]].abs().sum(-1) > 0).all()


def test_saved_rows_are_the_context_plus_its_correction(tmp_path):
    model = _cpt().eval()
    encoder = model.base_model.prompt_encoder["default"]
    with torch.no_grad():
        encoder.delta_embedding.weight.normal_(0, 1, generator=torch.Generator().manual_seed(4))
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "adapter_model.safetensors")["prompt_embeddings"]
    assert torch.equal(saved, encoder.embedding.weight + encoder.projected_delta())
    loaded = PeftModel.from_pretrained(task_model("CAUSAL_LM"), tmp_path)
    ids, mask = batch()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids, attention_mask=mask).logits)


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


def _pair(seed: int = 0, **kwargs):
    ours = _cpt(seed, **kwargs)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(task_model("CAUSAL_LM"), peft.CPTConfig(task_type="CAUSAL_LM", **{**CONTEXT, **kwargs}))
    return ours, theirs


@needs_hf
@pytest.mark.parametrize("kind", ["none", "decay"])
def test_training_steps_equal_hugging_faces(kind):
    """Same start, same batches: the same losses, gradients and projected corrections step after step."""
    ours, theirs = _pair(opt_weighted_loss_type=kind, opt_loss_decay_factor=0.7)
    mine, hers = ours.base_model.prompt_encoder["default"], theirs.prompt_encoder["default"]
    assert torch.equal(mine.embedding.weight, hers.embedding.weight)
    optimizers = [torch.optim.SGD([m.delta_embedding.weight], lr=0.5) for m in (mine, hers)]
    for step in range(3):
        ids, types = _query(seed=10 + step)
        losses = []
        for model, optimizer in zip((ours, theirs), optimizers):
            model.train()
            optimizer.zero_grad()
            out = model(input_ids=ids, labels=ids, input_type_mask=types.clone())
            out.loss.backward()
            optimizer.step()
            losses.append(out.loss.detach())
        assert torch.equal(losses[0], losses[1]), step
        assert torch.equal(mine.delta_embedding.weight, hers.delta_embedding.weight), step


@needs_hf
def test_logits_and_loss_equal_hugging_faces_in_evaluation():
    ours, theirs = _pair(seed=2)
    with torch.no_grad():
        ours.base_model.prompt_encoder["default"].delta_embedding.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(5))
        theirs.prompt_encoder["default"].delta_embedding.weight.copy_(ours.base_model.prompt_encoder["default"].delta_embedding.weight)
    ours.eval(), theirs.eval()
    ids, types = _query()
    with torch.no_grad():
        a = ours(input_ids=ids, labels=ids, input_type_mask=types.clone())
        b = theirs(input_ids=ids, labels=ids, input_type_mask=types.clone())
    assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
