"""What is particular to TinyLoRA: the frozen SVD factors, the seeded projections, the grouping of the
trained vectors (`weight_tying`), the math on linear and embedding layers (against an independent
computation) and outputs equal to Hugging Face PEFT's. The conformance kit checks the rest."""

from __future__ import annotations

import copy

import pytest
import torch

from peft_core import get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_model, hf_peft

from peft_tinylora import TinyLoraConfig, TinyLoraEmbedding, TinyLoraLinear, projection, truncated_svd

torch.set_num_threads(1)


def _hf(base, **kwargs):
    peft = hf_peft() or pytest.skip("Hugging Face PEFT is not installed")
    return hf_model(base, peft.TinyLoraConfig(**kwargs))



def test_svd_factors_split_the_singular_values():
    w = torch.randn(10, 7)
    a, b = truncated_svd(w, 3)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    torch.testing.assert_close(b @ a, u[:, :3] @ torch.diag(s[:3]) @ vh[:3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.norm(dim=1), b.norm(dim=0), atol=1e-5, rtol=1e-5)
    assert truncated_svd(w, 50)[0].shape == (7, 7)  # clipped to the layer's size


@pytest.mark.parametrize("tying,expected", [(0.0, ["0", "1", "2", "3"]), (0.5, ["0", "0", "1", "1"]), (1.0, ["0"] * 4)])
def test_weight_tying_groups_consecutive_layers(tying, expected):
    model = get_peft_model(models.LLAMA.build(), TinyLoraConfig(r=2, u=3, weight_tying=tying, task_type="CAUSAL_LM"))
    layers = [model.base_model.model.model.layers[i].self_attn.get_submodule(n) for i in range(2) for n in ("q_proj", "v_proj")]
    assert [layer.tinylora_v_key["default"] for layer in layers] == expected
    assert sorted(model.base_model.tinylora_v["default"].keys()) == sorted(set(expected))
    for index, layer in enumerate(layers):  # P of the i-th target is drawn from projection_seed + i
        assert torch.equal(layer.tinylora_P["default"], projection(3, 2, 42 + index))


def test_linear_and_embedding_math():
    base = models.EMBEDDING.build()
    config = TinyLoraConfig(r=3, u=4, target_modules=["emb", "lin0"], init_weights="uniform", init_v_bound=0.5)
    model = get_peft_model(copy.deepcopy(base), config)
    emb, lin = model.base_model.model.emb, model.base_model.model.lin0
    assert isinstance(emb, TinyLoraEmbedding) and isinstance(lin, TinyLoraLinear)
    vectors = model.base_model.tinylora_v["default"]
    with torch.no_grad():
        for layer in (emb, lin):
            v = vectors[layer.tinylora_v_key["default"]]
            r = sum(v[i] * layer.tinylora_P["default"][i] for i in range(4))
            torch.testing.assert_close(layer.core("default"), r)
        ids = torch.randint(0, 128, (2, 5))
        a, b = emb.tinylora_A["default"], emb.tinylora_B["default"]
        torch.testing.assert_close(emb(ids), base.emb(ids) + b[ids] @ emb.core("default") @ a)
        x = torch.randn(3, 16)
        a, b = lin.tinylora_A["default"], lin.tinylora_B["default"]
        torch.testing.assert_close(lin(x), base.lin0(x) + x @ (b @ lin.core("default") @ a).T)


def test_vectors_train_only_for_the_active_adapter():
    model = get_peft_model(models.MLP.build(), TinyLoraConfig(r=2, u=3, target_modules=["lin1"]))
    model.add_adapter("b", TinyLoraConfig(r=2, u=3, target_modules=["lin1"]))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["base_model.tinylora_v.default.0"]
    model.set_adapter("b")
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == ["base_model.tinylora_v.b.0"]


@pytest.mark.parametrize("tying", [0.0, 0.6])
def test_frozen_tensors_grouping_and_outputs_match_hugging_face(tying):
    kwargs = dict(r=2, u=3, weight_tying=tying, target_modules=["embed_tokens", "q_proj", "down_proj"], init_weights="uniform")
    torch.manual_seed(0)
    ours = get_peft_model(models.LLAMA.build(), TinyLoraConfig(**kwargs))
    torch.manual_seed(0)
    theirs = _hf(models.LLAMA.build(), **kwargs)
    mine = {k: v for k, v in ours.state_dict().items() if ".tinylora_" in k}
    hf = {k: v for k, v in theirs.state_dict().items() if ".tinylora_" in k and ".tinylora_v." not in k[len("base_model.model"):]}
    hf.update({k: v for k, v in theirs.state_dict().items() if k.startswith("base_model.tinylora_v.")})
    assert mine.keys() == hf.keys()
    assert all(torch.equal(mine[k], hf[k]) for k in mine)
    inputs = models.LLAMA.make_inputs()
    with torch.no_grad():
        assert torch.equal(ours.eval()(**inputs).logits, theirs.eval()(**inputs).logits)
        merged_ours, merged_theirs = ours.merge_and_unload(), theirs.merge_and_unload()
        assert torch.equal(merged_ours.model.embed_tokens.weight, merged_theirs.model.embed_tokens.weight)
        assert torch.equal(merged_ours.model.layers[1].mlp.down_proj.weight, merged_theirs.model.layers[1].mlp.down_proj.weight)
