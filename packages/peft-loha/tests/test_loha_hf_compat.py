"""Both-direction compatibility with Hugging Face PEFT 0.21.2 (imported only here, in tests).

For each case, the same config is applied by HF and by us to identical tiny base models, with
non-trivial adapter weights. Checked: HF's files load here with bit-identical outputs, our files
load in HF with bit-identical outputs and no "Unexpected keyword arguments" warning, both write the
same keys / shapes / dtypes (and, from the same seed, the same initial values), the configs are
equal as parsed JSON, merged weights agree, and training-mode dropout draws agree.
"""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

import peft_core
from peft_loha import LoHaConfig

hf = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

SET_FIELDS = ("target_modules", "exclude_modules")

CASES = {
    "llama": dict(
        model="llama",
        config=dict(r=2, alpha=4, target_modules=["q_proj", "v_proj"], init_weights=False, task_type="CAUSAL_LM"),
    ),
    "llama-patterns": dict(
        model="llama",
        config=dict(
            r=4,
            alpha=8,
            target_modules=["q_proj", "v_proj", "down_proj"],
            rank_pattern={"layers.0.self_attn.q_proj": 2},
            alpha_pattern={"v_proj": 3},
            exclude_modules=["layers.1.mlp.down_proj"],
            modules_to_save=["lm_head"],
            rank_dropout=0.2,
            module_dropout=0.1,
        ),
        randomise=True,  # default (no-op) init, then random values written into the factors
    ),
    "conv": dict(model="conv", config=dict(r=3, alpha=5, init_weights=False)),
    "conv-effective": dict(model="conv", config=dict(r=2, alpha=3, use_effective_conv2d=True, init_weights=False)),
}


def _setup(case, make_llama, make_convnet, conv_targets, input_ids, images):
    spec = CASES[case]
    kwargs = dict(spec["config"])
    if spec["model"] == "conv":
        kwargs.setdefault("target_modules", conv_targets)
        return make_convnet, kwargs, images, spec.get("randomise", False)
    return make_llama, kwargs, input_ids, spec.get("randomise", False)


def _out(model, inputs):
    with torch.no_grad():
        out = model(inputs)
    return out.logits if hasattr(out, "logits") else out


def _randomise(model, seed=5):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".hada_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def _hf_model(make, kwargs, randomise, seed=11):
    torch.manual_seed(seed)
    model = hf.get_peft_model(make(), hf.LoHaConfig(**copy.deepcopy(kwargs)))
    if randomise:
        _randomise(model)
    return model.eval()


def _our_model(make, kwargs, randomise, seed=11):
    torch.manual_seed(seed)
    model = peft_core.get_peft_model(make(), LoHaConfig(**copy.deepcopy(kwargs)))
    if randomise:
        _randomise(model)
    return model.eval()


def _json(path):
    data = json.loads((path / "adapter_config.json").read_text())
    for key in SET_FIELDS:
        if isinstance(data.get(key), list):
            data[key] = set(data[key])
    data["peft_version"] = data["peft_version"].partition("@")[0]
    return data


@pytest.fixture(params=sorted(CASES))
def case(request, make_llama, make_convnet, conv_targets, input_ids, images):
    return _setup(request.param, make_llama, make_convnet, conv_targets, input_ids, images)


def test_hf_adapter_loads_here_with_identical_outputs(case, tmp_path):
    make, kwargs, inputs, randomise = case
    theirs = _hf_model(make, kwargs, randomise)
    expected = _out(theirs, inputs)
    theirs.save_pretrained(tmp_path)
    torch.manual_seed(99)  # a different RNG state: nothing may depend on it
    ours = peft_core.PeftModel.from_pretrained(make(), tmp_path)
    assert torch.equal(_out(ours, inputs), expected)
    # and the adapter is really doing something
    with ours.disable_adapter():
        assert not torch.allclose(_out(ours, inputs), expected)


def test_our_adapter_loads_in_hf_with_identical_outputs(case, tmp_path):
    make, kwargs, inputs, randomise = case
    ours = _our_model(make, kwargs, randomise)
    expected = _out(ours, inputs)
    ours.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = hf.PeftModel.from_pretrained(make(), tmp_path)
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert type(theirs.peft_config["default"]).__name__ == "LoHaConfig"
    assert torch.equal(_out(theirs, inputs), expected)


def test_same_files_and_config_as_hf(case, tmp_path):
    make, kwargs, inputs, randomise = case
    _hf_model(make, kwargs, randomise).save_pretrained(tmp_path / "hf")
    _our_model(make, kwargs, randomise).save_pretrained(tmp_path / "ours")
    theirs = load_file(tmp_path / "hf" / "adapter_model.safetensors")
    mine = load_file(tmp_path / "ours" / "adapter_model.safetensors")
    assert sorted(mine) == sorted(theirs)
    for key, tensor in theirs.items():
        assert (mine[key].shape, mine[key].dtype) == (tensor.shape, tensor.dtype), key
        # same seed, same order of random draws: the initial tensors are identical too
        assert torch.equal(mine[key], tensor), key
    assert _json(tmp_path / "ours") == _json(tmp_path / "hf")


def test_merge_and_unload_matches_hf(case):
    make, kwargs, inputs, randomise = case
    theirs = _hf_model(make, kwargs, randomise).merge_and_unload()
    ours = _our_model(make, kwargs, randomise).merge_and_unload()
    hf_state, our_state = theirs.state_dict(), ours.state_dict()
    assert sorted(hf_state) == sorted(our_state)
    for key, value in hf_state.items():
        assert torch.allclose(our_state[key], value, atol=1e-6, rtol=0), key


def test_training_mode_dropout_draws_match_hf(make_convnet, conv_targets, images, tmp_path):
    kwargs = dict(r=2, alpha=4, target_modules=conv_targets, init_weights=False, rank_dropout=0.4, module_dropout=0.3)
    theirs = _hf_model(make_convnet, kwargs, False)
    theirs.save_pretrained(tmp_path)
    ours = peft_core.PeftModel.from_pretrained(make_convnet(), tmp_path)
    theirs.train()
    ours.train()
    for seed in range(4):
        torch.manual_seed(seed)
        expected = theirs(images)
        torch.manual_seed(seed)
        assert torch.equal(ours(images), expected), seed


def test_several_adapters_saved_by_hf_load_here(make_convnet, conv_targets, images, tmp_path):
    theirs = _hf_model(make_convnet, dict(r=2, target_modules=conv_targets, init_weights=False), False)
    theirs.add_adapter("second", hf.LoHaConfig(r=3, alpha=2, target_modules=["lin", "conv2"], init_weights=False))
    expected = {}
    for name in ("default", "second"):
        theirs.set_adapter(name)
        expected[name] = _out(theirs, images)
    theirs.save_pretrained(tmp_path)
    assert (tmp_path / "second" / "adapter_model.safetensors").exists()

    ours = peft_core.PeftModel.from_pretrained(make_convnet(), tmp_path)
    ours.load_adapter(tmp_path / "second", adapter_name="second")
    for name in ("default", "second"):
        ours.set_adapter(name)
        assert torch.equal(_out(ours, images), expected[name]), name
    # mixed batch: each row as computed by HF with that row's adapter alone
    mixed = _out_mixed(ours, images, ["second", "__base__", "default"])
    with ours.disable_adapter():
        base = _out(ours, images)
    for row, name in enumerate(["second", "__base__", "default"]):
        ref = base if name == "__base__" else expected[name]
        assert torch.allclose(mixed[row], ref[row], atol=1e-6, rtol=0), name


def _out_mixed(model, inputs, names):
    with torch.no_grad():
        return model(inputs, adapter_names=names)
