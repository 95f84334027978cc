"""What is particular to Lily: which layers share `A` and `B`, the batch-averaged router (against an
independent computation), outputs equal to Hugging Face PEFT's, and the refusals. The conformance
kit checks the rest (see test_conformance.py)."""

from __future__ import annotations

import copy
import os
import warnings

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from peft_core import UnsupportedOperationError, get_peft_model
from peft_core.testing import models
from peft_core.testing.hf import hf_peft

from peft_lily import LilyConfig, LilyLinear

torch.set_num_threads(1)


def _layers(model, name):
    return [model.base_model.model.model.layers[i].self_attn.get_submodule(name) for i in range(2)]



@pytest.mark.parametrize("stride", [1, 2])
def test_sharing_by_target_and_stride(stride):
    model = get_peft_model(models.LLAMA.build(), LilyConfig(r=4, stride_A=stride, task_type="CAUSAL_LM"))
    q0, q1 = _layers(model, "q_proj")
    v0, _ = _layers(model, "v_proj")
    assert (q0.lily_A["default"] is q1.lily_A["default"]) == (stride == 2)
    assert q0.lily_B["default"] is q1.lily_B["default"]
    assert q0.lily_router["default"] is not q1.lily_router["default"]
    assert q0.lily_B["default"] is not v0.lily_B["default"]


def test_forward_averages_the_router_over_the_batch():
    base = models.MLP.build()
    model = get_peft_model(copy.deepcopy(base), LilyConfig(r=3, num_B=3, scaling=0.5, target_modules=["lin1"], init_weights=False))
    layer = model.base_model.model.lin1
    assert isinstance(layer, LilyLinear)
    a, b, router = (layer.lily_A["default"].weight, layer.lily_B["default"].weight, layer.lily_router["default"].weight)
    x = torch.randn(4, 5, 32)
    h = x @ a.T
    p = F.softmax(h @ router.T, dim=-1).reshape(-1, 3).mean(0)
    combined = sum(p[e] * b.reshape(3, 3, 32)[e] for e in range(3))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), base.lin1(x) + 0.5 * h @ combined)
        # a row's output depends on the rest of the batch
        assert not torch.allclose(layer(x[:1]), layer(x)[:1])


def test_merge_and_mixed_batches_are_refused():
    model = get_peft_model(models.MLP.build(), LilyConfig(r=2, target_modules=["lin1"], init_weights=False)).eval()
    with pytest.raises(UnsupportedOperationError):
        model.merge_and_unload()
    with pytest.raises(UnsupportedOperationError):
        model(torch.randn(2, 16), adapter_names=["default", "__base__"])


def test_shared_tensors_are_saved_under_every_layer(tmp_path):
    model = get_peft_model(models.LLAMA.build(), LilyConfig(r=4, stride_A=2, target_modules=["q_proj"], init_weights=False))
    model.save_pretrained(tmp_path)
    state = load_file(os.path.join(tmp_path, "adapter_model.safetensors"))
    keys = [f"base_model.model.model.layers.{i}.self_attn.q_proj.lily_{p}.weight" for i in range(2) for p in ("A", "B")]
    assert all(k in state for k in keys)
    assert torch.equal(state[keys[0]], state[keys[2]]) and torch.equal(state[keys[1]], state[keys[3]])


@pytest.mark.parametrize("targets", [["q_proj", "v_proj", "down_proj"], r".*\.(k_proj|up_proj)"])
def test_sharing_and_outputs_match_hugging_face(targets):
    peft = hf_peft()
    if peft is None:
        pytest.skip("Hugging Face PEFT is not installed")
    kwargs = dict(r=4, stride_A=2, num_B=3, scaling=2.0, target_modules=targets, init_weights=False)
    torch.manual_seed(1)
    ours = get_peft_model(models.LLAMA.build(), LilyConfig(**kwargs))
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(models.LLAMA.build(), peft.LilyConfig(**kwargs))
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    lily = [k for k in theirs_state if ".lily_" in k]
    assert sorted(lily) == sorted(k for k in ours_state if ".lily_" in k)
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in lily)  # same seeded init, same sharing
    inputs = models.LLAMA.make_inputs()
    with torch.no_grad():
        assert torch.equal(ours.eval()(**inputs).logits, theirs.eval()(**inputs).logits)
