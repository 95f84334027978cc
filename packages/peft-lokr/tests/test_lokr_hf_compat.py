"""Both-direction compatibility with Hugging Face PEFT 0.21.2 (imported only here, in tests).

Each case applies the same LoKr config with HF and with us to identical tiny base models, with
non-trivial adapter weights, and checks: HF files load here with bit-identical outputs; our files
load in HF with bit-identical outputs and without an "Unexpected keyword arguments" warning; both
save the same keys, shapes, dtypes (and, from one seed, values); configs are equal as parsed JSON;
merged weights agree; training-mode dropout agrees draw for draw; `factorization` agrees.
"""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

import peft_core
from peft_lokr import LoKrConfig, factorization

hf = pytest.importorskip("peft")
pytestmark = pytest.mark.compat

CASES = {
    "llama": ("llama", dict(r=2, alpha=4, target_modules=["q_proj", "v_proj"], init_weights=False, task_type="CAUSAL_LM"), False),
    "llama-decompose": (
        "llama",
        dict(
            r=1,
            alpha=3,
            decompose_both=True,
            decompose_factor=4,
            target_modules=["q_proj", "v_proj", "up_proj"],
            exclude_modules=["layers.1.mlp.up_proj"],
            layers_to_transform=[1],
            layers_pattern="layers",
            modules_to_save=["lm_head"],
            rank_dropout=0.1,
            init_weights=False,
        ),
        False,
    ),
    "kron-r1": ("kron", dict(r=1, alpha=2, decompose_both=True, init_weights=False), False),
    # Conv1d gets r=2: at r=1 HF 0.21.2 crashes on Conv1d + effective conv (see test_lokr.py)
    "kron-r1-effective": (
        "kron",
        dict(r=1, use_effective_conv2d=True, decompose_both=True, rank_pattern={"conv1": 2}, init_weights=False),
        False,
    ),
    # full w2 on the convolutions (4-D kernel; HF's 2-D x 3-D kron for Conv1d); effective conv
    # is asked for but the full w2 takes precedence
    "kron-full-w2": (
        "kron", dict(r=2, alpha=3, use_effective_conv2d=True, rank_pattern={"conv1": 3}, init_weights=False), False
    ),
    "kron-factor-lycoris": (
        "kron",
        dict(
            r=1,
            decompose_factor=2,
            init_weights="lycoris",
            rank_dropout_scale=True,
            rank_pattern={"lin": 3},
            alpha_pattern={"conv1": 5},
        ),
        True,  # the LyCORIS-style init is a no-op: randomise the factors afterwards
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request, llama_factory, kronnet_factory, kron_targets, token_ids, feature_maps):
    kind, kwargs, randomise = CASES[request.param]
    kwargs = copy.deepcopy(kwargs)
    if kind == "kron":
        kwargs.setdefault("target_modules", kron_targets)
        return kronnet_factory, kwargs, feature_maps, randomise
    return llama_factory, kwargs, token_ids, randomise


def _run(model, inputs):
    with torch.no_grad():
        out = model(inputs)
    return getattr(out, "logits", out)


def _fill_random(model, seed=4):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lokr_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def _build(get_model, config, factory, randomise, seed=21):
    torch.manual_seed(seed)
    model = get_model(factory(), config)
    if randomise:
        _fill_random(model)
    return model.eval()


def _hf(factory, kwargs, randomise):
    return _build(hf.get_peft_model, hf.LoKrConfig(**copy.deepcopy(kwargs)), factory, randomise)


def _ours(factory, kwargs, randomise):
    return _build(peft_core.get_peft_model, LoKrConfig(**copy.deepcopy(kwargs)), factory, randomise)


def _config_json(directory):
    data = json.loads((directory / "adapter_config.json").read_text())
    for key in ("target_modules", "exclude_modules"):
        if isinstance(data.get(key), list):
            data[key] = set(data[key])
    data["peft_version"] = data["peft_version"].partition("@")[0]
    return data


def test_factorization_equals_hf():
    from peft.tuners.lokr.layer import factorization as hf_factorization

    for n in range(1, 260):
        for f in (-7, -1, 0, 1, 2, 3, 4, 5, 8, 16, 64, 300):
            assert factorization(n, f) == hf_factorization(n, f), (n, f)


def test_hf_adapter_loads_here_with_identical_outputs(case, tmp_path):
    factory, kwargs, inputs, randomise = case
    theirs = _hf(factory, kwargs, randomise)
    expected = _run(theirs, inputs)
    theirs.save_pretrained(tmp_path)
    torch.manual_seed(1234)
    ours = peft_core.PeftModel.from_pretrained(factory(), tmp_path)
    assert torch.equal(_run(ours, inputs), expected)
    with ours.disable_adapter():
        assert not torch.allclose(_run(ours, inputs), expected)  # the adapter is not a no-op


def test_our_adapter_loads_in_hf_with_identical_outputs(case, tmp_path):
    factory, kwargs, inputs, randomise = case
    ours = _ours(factory, kwargs, randomise)
    expected = _run(ours, inputs)
    ours.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = hf.PeftModel.from_pretrained(factory(), tmp_path)
    assert not [w for w in caught if "Unexpected keyword" in str(w.message)]
    assert type(theirs.peft_config["default"]).__name__ == "LoKrConfig"
    assert torch.equal(_run(theirs, inputs), expected)


def test_same_files_and_config_as_hf(case, tmp_path):
    factory, kwargs, inputs, randomise = case
    _hf(factory, kwargs, randomise).save_pretrained(tmp_path / "hf")
    _ours(factory, kwargs, randomise).save_pretrained(tmp_path / "ours")
    theirs = load_file(tmp_path / "hf" / "adapter_model.safetensors")
    mine = load_file(tmp_path / "ours" / "adapter_model.safetensors")
    assert sorted(mine) == sorted(theirs)
    for key, tensor in theirs.items():
        assert (mine[key].shape, mine[key].dtype) == (tensor.shape, tensor.dtype), key
        assert torch.equal(mine[key], tensor), key  # same seed and draw order: same initial values
    assert _config_json(tmp_path / "ours") == _config_json(tmp_path / "hf")


def test_merge_and_unload_matches_hf(case):
    factory, kwargs, inputs, randomise = case
    theirs = _hf(factory, kwargs, randomise).merge_and_unload().state_dict()
    ours = _ours(factory, kwargs, randomise).merge_and_unload().state_dict()
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert torch.allclose(ours[key], value, atol=1e-6, rtol=0), key


@pytest.mark.parametrize("rescale", [False, True])
def test_training_mode_dropout_draws_match_hf(kronnet_factory, kron_targets, feature_maps, tmp_path, rescale):
    kwargs = dict(
        r=1, target_modules=kron_targets, init_weights=False, rank_dropout=0.5, module_dropout=0.25,
        rank_dropout_scale=rescale,
    )
    theirs = _hf(kronnet_factory, kwargs, False)
    theirs.save_pretrained(tmp_path)
    ours = peft_core.PeftModel.from_pretrained(kronnet_factory(), tmp_path)
    theirs.train()
    ours.train()
    outs = []
    for seed in range(4):
        torch.manual_seed(seed)
        expected = theirs(feature_maps)
        torch.manual_seed(seed)
        outs.append(ours(feature_maps))
        assert torch.equal(outs[-1], expected), seed
    assert not torch.equal(outs[0], outs[1])  # dropout really varies between draws


def test_several_adapters_saved_by_hf_load_here(kronnet_factory, kron_targets, feature_maps, tmp_path):
    theirs = _hf(kronnet_factory, dict(r=1, target_modules=kron_targets, init_weights=False), False)
    theirs.add_adapter("extra", hf.LoKrConfig(r=2, alpha=5, target_modules=["lin", "point"], init_weights=False))
    expected = {}
    for name in ("default", "extra"):
        theirs.set_adapter(name)
        expected[name] = _run(theirs, feature_maps)
    theirs.save_pretrained(tmp_path)

    ours = peft_core.PeftModel.from_pretrained(kronnet_factory(), tmp_path)
    ours.load_adapter(tmp_path / "extra", adapter_name="extra")
    for name in ("default", "extra"):
        ours.set_adapter(name)
        assert torch.equal(_run(ours, feature_maps), expected[name]), name
    with ours.disable_adapter():
        expected["__base__"] = _run(ours, feature_maps)
    order = ["extra", "default", "__base__"]
    with torch.no_grad():
        mixed = ours(feature_maps, adapter_names=order)
    for row, name in enumerate(order):
        assert torch.allclose(mixed[row], expected[name][row], atol=1e-6, rtol=0), name
