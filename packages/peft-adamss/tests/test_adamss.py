"""What is particular to AdaMSS: the decomposition and clustering (equal to Hugging Face PEFT's), the
scattered subspace updates (against an independent computation), the bias column in merges, ASA,
and outputs equal to HF's. The conformance kit checks the rest (see test_conformance.py)."""

from __future__ import annotations

import copy
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from peft_core import AdapterLoadError, PeftModel, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_model, hf_peft_or_skip

from peft_adamss import AdamssConfig, AdamssLinear

torch.set_num_threads(1)


def _hf(base, **kwargs):
    return hf_model(base, hf_peft_or_skip().AdamssConfig(**kwargs))


def test_init_weights_false_is_hfs_spelling_of_none():
    assert AdamssConfig(init_weights=False).init_weights is None



def test_forward_scatters_each_subspaces_update_to_its_rows():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), AdamssConfig(r=6, num_subspaces=3, subspace_rank=2, target_modules=["lin1"], init_weights=None))
    layer = model.base_model.model.lin1
    assert isinstance(layer, AdamssLinear)
    rows = layer.adamss_rows["default"]
    assert sorted(torch.cat(rows).tolist()) == list(range(32))  # the subspaces split the output rows
    new_b = layer.adamss_newB["default"]
    assert new_b.shape == (6, 33)  # the bias column
    x = torch.randn(5, 32)
    projected = torch.cat([x, torch.ones(5, 1)], dim=1) @ new_b.T
    expected = base.lin1(x).clone()
    for members, a, b in zip(rows, layer.adamss_A["default"], layer.adamss_B["default"]):
        expected[:, members] += projected @ a.T @ b.T
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=1e-5)
        full = torch.zeros(32, 33)
        for members, a, b in zip(rows, layer.adamss_A["default"], layer.adamss_B["default"]):
            full[members] = b @ a @ new_b
        merged = model.merge_and_unload()
    torch.testing.assert_close(merged.lin1.weight, base.lin1.weight + full[:, :-1], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(merged.lin1.bias, base.lin1.bias + full[:, -1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("tiny,targets", [(models.MLP, ["lin0", "lin2"]), (models.LLAMA, ["q_proj", "down_proj"])])
def test_subspaces_and_outputs_match_hugging_face(tiny, targets):
    kwargs = dict(r=8, num_subspaces=3, subspace_rank=2, target_modules=targets, init_weights=None)
    torch.manual_seed(4)
    ours = get_peft_model(tiny.build(), AdamssConfig(**kwargs))
    torch.manual_seed(4)
    theirs = _hf(tiny.build(), **kwargs)
    for key, module in theirs.base_model.model.named_modules():
        if type(module).__name__ != "Linear" or not hasattr(module, "seg_result"):
            continue
        mine = ours.base_model.model.get_submodule(key)
        assert [r.tolist() for r in mine.adamss_rows["default"]] == [v.tolist() for v in module.seg_result["default"].values()]
        assert torch.equal(mine.adamss_newB["default"], module.adamss_newB["default"])
    mine_state = {k: v for k, v in ours.state_dict().items() if ".adamss_" in k}
    hf_state = {k: v for k, v in theirs.state_dict().items() if ".adamss_" in k}
    assert mine_state.keys() == hf_state.keys() and all(torch.equal(mine_state[k], hf_state[k]) for k in mine_state)
    inputs = tiny.make_inputs()
    with torch.no_grad():
        out_ours, out_theirs = ours.eval()(**inputs), theirs.eval()(**inputs)
        assert torch.equal(getattr(out_ours, "logits", out_ours), getattr(out_theirs, "logits", out_theirs))


def test_a_file_whose_subspaces_do_not_fit_is_refused(tmp_path):
    model = get_peft_model(models.MLP.build(), AdamssConfig(r=6, num_subspaces=3, target_modules=["lin1"]))
    model.save_pretrained(tmp_path)
    path = os.path.join(tmp_path, "adapter_model.safetensors")
    state = load_file(path)
    key = "base_model.model.lin1.adamss_B.0"
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])  # as if clustered differently
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(AdapterLoadError, match="wrong shape"):
        PeftModel.from_pretrained(models.MLP.build(), tmp_path)


def test_asa_keeps_only_the_most_important_subspaces_trainable():
    config = AdamssConfig(
        r=6, num_subspaces=3, subspace_rank=1, target_modules=["lin0", "lin1"], init_weights=None,
        use_asa=True, asa_target_subspaces=2, init_warmup=0, final_warmup=4, mask_interval=2,
    )
    model = get_peft_model(models.MLP.build(), config)
    model.train()
    x = torch.randn(8, 16)
    for step in range(1, 5):
        model.zero_grad()
        model(x).pow(2).mean().backward()
        model.base_model.update_and_allocate(step)
    layers = [m for m in model.modules() if isinstance(m, AdamssLinear)]
    active = [
        (i, k) for i, layer in enumerate(layers) for k in range(layer.num_subspaces("default"))
        if layer.adamss_A["default"][k].requires_grad
    ]
    assert len(active) == 2  # step 4 = final_warmup: the target
    for layer in layers:
        for k in range(layer.num_subspaces("default")):
            assert layer.adamss_A["default"][k].requires_grad == layer.adamss_B["default"][k].requires_grad
