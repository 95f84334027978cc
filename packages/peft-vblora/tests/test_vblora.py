"""What is particular to VB-LoRA: the vector bank and the top-k mixing, the compact top-k files, and
Hugging Face PEFT's draws. The conformance kit checks the rest (test_conformance.py)."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file

from peft_core import ConfigError, PeftModel, UnsupportedOperationError, get_peft_method, get_peft_model
from peft_core.testing import hf, models

import peft_vblora
from peft_vblora import VBLoRAConfig, VBLoRALinear

torch.set_num_threads(1)


def _model(config: VBLoRAConfig, seed: int = 0, base=None):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(base if base is not None else models.MLP.build(), config).eval()


def _mixed_by_loops(logits: torch.Tensor, bank: torch.Tensor, k: int) -> torch.Tensor:
    """Each row of logits -> the softmax-weighted sum of the k bank vectors with the largest logits."""
    flat = logits.reshape(-1, logits.shape[-1])
    out = torch.empty(flat.shape[0], bank.shape[1], dtype=torch.float64)
    for i, row in enumerate(flat.double()):
        order = sorted(range(row.numel()), key=lambda j: -float(row[j]))[:k]
        weights = torch.softmax(row[order], dim=0)
        out[i] = sum(w * bank[j].double() for w, j in zip(weights, order))
    return out.reshape(*logits.shape[:-1], bank.shape[1])


def test_registered_with_its_entry_point():
    from importlib.metadata import entry_points

    method = get_peft_method("vblora")
    assert method.config_cls is VBLoRAConfig and method.prefix == "vblora_"
    assert any(ep.name == "vblora" for ep in entry_points(group="peft.methods"))
    assert peft_vblora.__name__ == "peft_vblora"


def test_factors_are_top_k_mixtures_of_the_bank_and_the_forward_adds_b_a_x():
    config = VBLoRAConfig(r=3, num_vectors=6, vector_length=8, topk=2, target_modules=["lin0"])
    model = _model(config)
    layer = model.base_model.model.lin0
    assert isinstance(layer, VBLoRALinear)
    bank = model.base_model.vblora_vector_bank["default"]
    logits_a, logits_b = layer.vblora_logits_A["default"], layer.vblora_logits_B["default"]
    assert logits_a.shape == (3, 16 // 8, 6) and logits_b.shape == (32 // 8, 3, 6)
    a = _mixed_by_loops(logits_a.detach(), bank.detach(), 2).reshape(3, 16)  # r x (in/L pieces of L)
    b = _mixed_by_loops(logits_b.detach(), bank.detach(), 2)  # [out/L, r, L]
    b = b.permute(0, 2, 1).reshape(32, 3)  # piece p holds rows p*L .. p*L+L-1 of B
    got_a, got_b = layer.factors("default")
    torch.testing.assert_close(got_a.double(), a, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_b.double(), b, rtol=0, atol=1e-6)
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    base = layer.get_base_layer()
    expected = base(x).double() + x.double() @ a.T @ b.T
    with torch.no_grad():
        torch.testing.assert_close(layer(x).double(), expected, rtol=0, atol=1e-5)


def test_logits_outside_the_top_k_change_nothing_and_get_no_gradient():
    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, topk=3, target_modules=["lin0"])
    model = _model(config)
    layer = model.base_model.model.lin0
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(2))
    logits = layer.vblora_logits_A["default"]
    with torch.no_grad():
        before = layer(x)
        best = logits.topk(3, dim=-1).indices
        outside = torch.ones_like(logits, dtype=torch.bool).scatter(-1, best, False)
        low = logits.min() - 1.0
        logits[outside] = low  # still below every top-k logit
        torch.testing.assert_close(layer(x), before, rtol=0, atol=0)
    layer(x).sum().backward()
    assert logits.grad[outside].abs().max() == 0 and logits.grad[~outside].abs().max() > 0


def test_the_bank_is_one_trainable_tensor_per_adapter_shared_by_every_layer():
    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, target_modules=["lin0", "lin1", "lin2"])
    model = _model(config)
    model.add_adapter("other", VBLoRAConfig(r=2, num_vectors=4, vector_length=16, target_modules=["lin1"]))
    banks = model.base_model.vblora_vector_bank
    assert set(banks.keys()) == {"default", "other"}
    assert banks["default"].shape == (8, 8) and banks["other"].shape == (4, 16)
    layers = [model.base_model.model.lin0, model.base_model.model.lin1, model.base_model.model.lin2]
    assert all(layer.vblora_vector_bank is banks for layer in layers)
    # listed once among the parameters (not once per layer), and only the active adapter's bank trains
    names = [n for n, _ in model.named_parameters() if "vblora_vector_bank" in n]
    assert names == ["base_model.vblora_vector_bank.default", "base_model.vblora_vector_bank.other"]
    assert banks["default"].requires_grad and not banks["other"].requires_grad
    model.train()
    model(torch.randn(3, 16)).sum().backward()
    assert banks["default"].grad is not None and banks["default"].grad.abs().max() > 0
    model.set_adapter("other")
    assert banks["other"].requires_grad and not banks["default"].requires_grad
    model.delete_adapter("other")
    assert set(banks.keys()) == {"default"}


def test_saved_file_holds_the_bank_once(tmp_path):
    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, target_modules=["lin0", "lin1"])
    model = _model(config)
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert sorted(saved) == [
        "base_model.model.lin0.vblora_logits_A",
        "base_model.model.lin0.vblora_logits_B",
        "base_model.model.lin1.vblora_logits_A",
        "base_model.model.lin1.vblora_logits_B",
        "base_model.vblora_vector_bank",
    ]
    assert torch.equal(saved["base_model.vblora_vector_bank"], model.base_model.vblora_vector_bank["default"])


@pytest.mark.parametrize("autocast", [False, True])
def test_low_cpu_mem_usage_load_keeps_the_bank_dtype(tmp_path, autocast):
    # the meta bank of a low_cpu_mem_usage load had float32, so an fp16 adapter's bank came back float32
    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, target_modules=["lin0", "lin1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(models.MLP.build().half(), config, autocast_adapter_dtype=False)
    model.save_pretrained(tmp_path)
    expected = torch.float32 if autocast else torch.float16
    for low_cpu_mem_usage in (False, True):
        loaded = PeftModel.from_pretrained(
            models.MLP.build().half(), tmp_path, autocast_adapter_dtype=autocast, low_cpu_mem_usage=low_cpu_mem_usage
        )
        dtypes = {n: p.dtype for n, p in loaded.named_parameters() if "vblora_" in n}
        assert set(dtypes.values()) == {expected}, (low_cpu_mem_usage, dtypes)
        bank = loaded.base_model.vblora_vector_bank["default"]
        assert torch.equal(bank.half(), model.base_model.vblora_vector_bank["default"]) and not bank.is_meta


def test_inject_adapter_in_model_refuses_the_shared_bank_up_front():
    from peft_core import inject_adapter_in_model

    assert get_peft_method("vblora").model_cls.uses_shared_state  # HF PEFT's flag: its tests and callers read it
    base = models.MLP.build()
    before = {n: p.clone() for n, p in base.state_dict().items()}
    with pytest.raises(ValueError, match="shared state"):
        inject_adapter_in_model(VBLoRAConfig(num_vectors=8, vector_length=8, target_modules=["lin0"]), base)
    assert not any(isinstance(m, VBLoRALinear) for m in base.modules())
    assert base.state_dict().keys() == before.keys()
    assert all(torch.equal(base.state_dict()[n], t) for n, t in before.items())


@pytest.mark.parametrize(("num_vectors", "dtype"), [(16, torch.uint8), (300, torch.int16)])
def test_save_only_topk_weights_writes_indices_and_weights(tmp_path, num_vectors, dtype):
    config = VBLoRAConfig(r=2, num_vectors=num_vectors, vector_length=8, topk=3, save_only_topk_weights=True, target_modules=["lin0", "lin2"])
    model = _model(config)
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    layer = model.base_model.model.lin0
    assert "base_model.model.lin0.vblora_logits_A" not in saved
    indices = saved["base_model.model.lin0.vblora_logits_A_topk_indices"]
    weights = saved["base_model.model.lin0.vblora_logits_A_topk_weights"]
    assert indices.dtype == dtype and indices.shape == (2, 2, 3) and weights.shape == (2, 2, 2)
    best, where = layer.vblora_logits_A["default"].detach().topk(3)
    assert torch.equal(indices.long(), where)
    torch.testing.assert_close(weights, torch.softmax(best, -1)[..., :2], rtol=0, atol=0)
    assert "base_model.vblora_vector_bank" in saved

    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
    loaded = PeftModel.from_pretrained(models.MLP.build(), tmp_path).eval()
    with torch.no_grad():  # softmax(log(w)) is w only up to rounding
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-6)
    logits = loaded.base_model.model.lin0.vblora_logits_A["default"]
    assert torch.isinf(logits).sum() == logits.numel() - 2 * 2 * 3


def test_topk_only_adapters_refuse_training(tmp_path):
    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, save_only_topk_weights=True, target_modules=["lin0"])
    _model(config).save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(models.MLP.build(), tmp_path, is_trainable=True)
    loaded.train()
    with pytest.raises(UnsupportedOperationError, match="save_only_topk_weights"):
        loaded(torch.randn(2, 16))
    loaded.eval()
    loaded(torch.randn(2, 16))  # inference and merging still work
    loaded.merge_and_unload()


def test_topk_files_with_a_missing_half_are_refused(tmp_path):
    from safetensors.torch import save_file

    from peft_core import AdapterLoadError

    config = VBLoRAConfig(r=2, num_vectors=8, vector_length=8, save_only_topk_weights=True, target_modules=["lin0"])
    _model(config).save_pretrained(tmp_path)
    path = tmp_path / "adapter_model.safetensors"
    state = load_file(path)
    state.pop("base_model.model.lin0.vblora_logits_B_topk_weights")
    save_file(state, path)
    with pytest.raises(AdapterLoadError, match="topk_weights"):
        PeftModel.from_pretrained(models.MLP.build(), tmp_path)


def test_vector_length_must_divide_every_target():
    base = models.MLP.build()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    with pytest.raises(ConfigError, match="vector_length=12"):
        get_peft_model(base, VBLoRAConfig(r=2, num_vectors=4, vector_length=12, target_modules=["lin0", "lin1"]))
    assert all(type(m).__name__ != "VBLoRALinear" for m in base.modules())
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())


def test_unsupported_targets_are_refused():
    with pytest.raises(ConfigError, match="norm"):
        get_peft_model(models.MLP.build(), VBLoRAConfig(r=2, num_vectors=4, vector_length=8, target_modules=["norm"]))


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())


@needs_hf
def test_seeded_initialisation_equals_hugging_faces():
    """HF draws a bank for every target (keeping the last), then each layer's logits: same seed, same tensors."""
    kwargs = dict(r=3, num_vectors=12, vector_length=8, target_modules=["lin0", "lin1", "lin2"])
    ours = _model(VBLoRAConfig(**kwargs), seed=7)
    torch.manual_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(models.MLP.build(), peft.VBLoRAConfig(**kwargs))
    a = {k: v for k, v in ours.state_dict().items() if "vblora" in k}
    b = {k.replace("base_model.model.lin0.vblora_vector_bank", "base_model.vblora_vector_bank"): v for k, v in theirs.state_dict().items() if "vblora" in k}
    assert set(a) <= set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@needs_hf
@pytest.mark.parametrize("topk_only", [False, True], ids=["full", "topk-only"])
def test_top_k_adapters_load_both_ways_with_hugging_face(tmp_path, topk_only):
    """Top-2 of 16 vectors (the kit's cases mix every vector); full files are bit-identical both ways,
    compact ones up to the softmax of the logarithm of the saved weights."""
    kwargs = dict(
        r=2, num_vectors=16, vector_length=8, topk=2, init_vector_bank_bound=0.5, save_only_topk_weights=topk_only,
        target_modules=["lin0", "lin1"],
    )
    approx = lambda got, want, what: torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=what)  # noqa: E731
    problems = hf.both_ways(
        models.MLP.build,
        VBLoRAConfig(**kwargs),
        peft.VBLoRAConfig(**kwargs),
        lambda m: models.output_of(m(torch.randn(4, 16, generator=torch.Generator().manual_seed(4)))),
        tmp_path,
        compare=approx if topk_only else None,
    )
    assert problems == []
    assert json.loads((tmp_path / "ours" / "adapter_config.json").read_text())["save_only_topk_weights"] is topk_only
    assert os.path.isfile(tmp_path / "hf" / "adapter_model.safetensors")


@needs_hf
def test_savable_parameter_counts_match_hugging_faces():
    for topk_only in (False, True):
        kwargs = dict(r=2, num_vectors=16, vector_length=8, save_only_topk_weights=topk_only, target_modules=["lin0", "lin1"])
        ours = _model(VBLoRAConfig(**kwargs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = peft.get_peft_model(models.MLP.build(), peft.VBLoRAConfig(**kwargs))
        assert ours.get_nb_savable_parameters() == theirs.get_nb_savable_parameters()


@needs_hf
def test_default_targets_are_hugging_faces():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_VBLORA_TARGET_MODULES_MAPPING as theirs

    from peft_vblora.defaults import VBLORA_TARGETS

    assert {k: v if isinstance(v, str) else list(v) for k, v in VBLORA_TARGETS.items()} == theirs
