"""Data-driven initialisations: CorDA, LoRA-GA, EVA (against Hugging Face PEFT 0.21.2) and LoftQ.

A tiny Llama and small synthetic token batches. CorDA, LoRA-GA (same seed) and EVA are deterministic
in HF, so both libraries must produce bit-identical adapters and residual base weights; the adapted
model must start where the base model was (the residual plus the adapter gives back W), and a
CorDA adapter saved with conversion must apply to the original base. HF's LoftQ runs on CUDA only,
so LoftQ is checked on CPU by its defining property: the adapter shrinks the quantization error.
"""

from __future__ import annotations

import copy
import warnings

import peft_core
import peft_lora
import pytest
import torch
from _hf_compat import hf_peft, load_in_hf
from _lora_test_models import input_ids, logits, randomize_lora, tiny_llama
from peft_core.errors import ConfigError
from peft_lora.inits import (
    CordaConfig,
    EvaConfig,
    LoftQConfig,
    LoraGAConfig,
    get_eva_state_dict,
    initialize_lora_eva_weights,
    preprocess_corda,
    preprocess_loraga,
    replace_lora_weights_loftq,
)

_G = torch.Generator().manual_seed(0)
BATCHES = [{"input_ids": torch.randint(0, 128, (2, 9), generator=_G)} for _ in range(3)]
for _batch in BATCHES:
    _batch["labels"] = _batch["input_ids"].clone()


class Loader(list):
    """A sized, re-iterable dataloader."""


EVA_DATA = Loader({"input_ids": torch.randint(0, 128, (4, 16), generator=_G)} for _ in range(6))


def _calibrate(model):
    def run():
        for batch in BATCHES:
            for row in batch["input_ids"]:  # one sequence per call, as HF's CorDA hook expects
                model(input_ids=row[None])

    return run


def _train_step(model):
    def step():
        for batch in BATCHES:
            model(**batch).loss.backward()

    return step


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, different[:5]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.compat
@pytest.mark.parametrize("method", ["ipm", "kpm"])
def test_corda_equals_hf_and_starts_at_the_base_model(method):
    peft = hf_peft()
    from peft.tuners.lora.config import CordaConfig as HFCordaConfig
    from peft.tuners.lora.corda import preprocess_corda as hf_preprocess

    kw = dict(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights="corda")
    theirs_base, ours_base = tiny_llama(), tiny_llama()
    theirs_config = peft.LoraConfig(corda_config=HFCordaConfig(corda_method=method), **kw)
    ours_config = peft_lora.LoraConfig(corda_config=CordaConfig(corda_method=method), **kw)
    hf_preprocess(theirs_base, theirs_config, run_model=_calibrate(theirs_base))
    preprocess_corda(ours_base, ours_config, run_model=_calibrate(ours_base))
    theirs = peft.get_peft_model(theirs_base, theirs_config)
    ours = peft_core.get_peft_model(ours_base, ours_config)
    _assert_same_state(ours, theirs)
    q_proj = ours.base_model.model.model.layers[0].self_attn.q_proj
    assert not torch.equal(q_proj.get_base_layer().weight, tiny_llama().model.layers[0].self_attn.q_proj.weight)
    torch.testing.assert_close(logits(ours, input_ids()), logits(tiny_llama(), input_ids()), atol=1e-4, rtol=1e-4)


def test_corda_cache_and_conversion_to_a_plain_lora(tmp_path):
    config = peft_lora.LoraConfig(
        r=4, target_modules=["q_proj"], init_lora_weights="corda", corda_config=CordaConfig(cache_file=str(tmp_path / "c.pt"))
    )
    base = tiny_llama()
    preprocess_corda(base, config, run_model=_calibrate(base))
    cached = tiny_llama()
    preprocess_corda(cached, copy.deepcopy(config))  # no run_model: read from the cache
    model = peft_core.get_peft_model(base, config)
    _assert_same_state(model, peft_core.get_peft_model(cached, copy.deepcopy(config)))
    model.peft_config["default"].init_lora_weights = True
    model.save_pretrained(tmp_path / "init")
    model.peft_config["default"].init_lora_weights = "corda"
    randomize_lora(model, seed=3, std=0.05)
    trained = logits(model, input_ids())
    model.save_pretrained(tmp_path / "ft", path_initial_model_for_weight_conversion=tmp_path / "init")
    converted = peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path / "ft")  # the ORIGINAL base
    torch.testing.assert_close(logits(converted, input_ids()), trained, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="preprocess_corda"):
        peft_core.get_peft_model(tiny_llama(), _quiet(peft_lora.LoraConfig, target_modules=["q_proj"], init_lora_weights="corda"))


@pytest.mark.compat
@pytest.mark.parametrize("direction, scale", [("ArB2r", "stable"), ("ArBr", "weight_svd"), ("random", "gd_scale")])
def test_lora_ga_equals_hf_for_the_same_seed(direction, scale):
    peft = hf_peft()
    from peft.tuners.lora.config import LoraGAConfig as HFLoraGAConfig
    from peft.tuners.lora.loraga import preprocess_loraga as hf_preprocess

    kw = dict(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights="lora_ga")
    theirs_base, ours_base = tiny_llama(), tiny_llama()
    theirs_config = peft.LoraConfig(lora_ga_config=HFLoraGAConfig(direction=direction, scale=scale), **kw)
    ours_config = peft_lora.LoraConfig(lora_ga_config=LoraGAConfig(direction=direction, scale=scale), **kw)
    hf_preprocess(theirs_base, theirs_config, _train_step(theirs_base))
    preprocess_loraga(ours_base, ours_config, _train_step(ours_base))
    torch.manual_seed(5)
    theirs = peft.get_peft_model(theirs_base, theirs_config)
    torch.manual_seed(5)
    ours = peft_core.get_peft_model(ours_base, ours_config)
    _assert_same_state(ours, theirs)
    torch.testing.assert_close(logits(ours, input_ids()), logits(tiny_llama(), input_ids()), atol=1e-4, rtol=1e-4)
    assert all(not p.requires_grad for n, p in ours_base.named_parameters() if "lora" not in n)


def test_lora_ga_gradient_cache_and_fallback(tmp_path):
    config = peft_lora.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights="lora_ga", lora_ga_config=LoraGAConfig())
    base = tiny_llama()
    preprocess_loraga(base, config, _train_step(base), cache_file=str(tmp_path / "g.pt"))
    again = tiny_llama()
    preprocess_loraga(again, copy.deepcopy(config), lambda: pytest.fail("the cache should be used"), cache_file=str(tmp_path / "g.pt"))
    torch.manual_seed(1)
    first = peft_core.get_peft_model(base, config)
    torch.manual_seed(1)
    _assert_same_state(first, peft_core.get_peft_model(again, copy.deepcopy(config)))
    plain = peft_core.get_peft_model(tiny_llama(), copy.deepcopy(config))  # no gradient: default init (B = 0)
    assert torch.equal(logits(plain, input_ids()), logits(tiny_llama(), input_ids()))
    with pytest.raises(ConfigError, match="lora_ga_config"):
        preprocess_loraga(tiny_llama(), peft_lora.LoraConfig(target_modules=["q_proj"], init_lora_weights="lora_ga"), lambda: None)


@pytest.mark.compat
def test_eva_equals_hf_and_saves_a_plain_lora(tmp_path):
    peft = hf_peft()
    from peft.tuners.lora.config import EvaConfig as HFEvaConfig
    from peft.tuners.lora.eva import get_eva_state_dict as hf_state
    from peft.tuners.lora.eva import initialize_lora_eva_weights as hf_initialize

    kw = dict(r=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"], init_lora_weights="eva")
    torch.manual_seed(1)
    theirs = _quiet(peft.get_peft_model, tiny_llama(), peft.LoraConfig(eva_config=HFEvaConfig(tau=0.9), **kw))
    torch.manual_seed(1)
    ours = peft_core.get_peft_model(tiny_llama(), peft_lora.LoraConfig(eva_config=EvaConfig(tau=0.9), **kw))
    their_state = _quiet(hf_state, theirs, EVA_DATA, show_progress_bar=False)
    our_state = get_eva_state_dict(ours, EVA_DATA, show_progress_bar=False)
    assert sorted(our_state) == sorted(their_state)
    assert all(torch.equal(our_state[k], their_state[k]) for k in our_state)
    assert sorted({v.shape[0] for v in our_state.values()}) != [4]  # ranks were redistributed
    _quiet(hf_initialize, theirs, eva_state_dict=their_state)
    initialize_lora_eva_weights(ours, eva_state_dict=our_state)
    ours_config, theirs_config = ours.peft_config["default"], theirs.peft_config["default"]
    assert ours_config.rank_pattern == theirs_config.rank_pattern
    assert ours_config.alpha_pattern == theirs_config.alpha_pattern
    assert set(ours_config.target_modules) == set(theirs_config.target_modules)
    _assert_same_state(ours, theirs)
    assert torch.equal(logits(ours, input_ids()), logits(tiny_llama(), input_ids()))  # B = 0
    randomize_lora(ours, seed=4)
    ours.save_pretrained(tmp_path)
    assert torch.equal(logits(load_in_hf(tiny_llama(), tmp_path), input_ids()), logits(ours, input_ids()))
    assert torch.equal(logits(peft_core.PeftModel.from_pretrained(tiny_llama(), tmp_path), input_ids()), logits(ours, input_ids()))


def test_eva_dataloader_path_and_refusals():
    config = peft_lora.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights="eva", eva_config=EvaConfig(tau=0.9))
    model = peft_core.get_peft_model(tiny_llama(), config)
    initialize_lora_eva_weights(model, EVA_DATA, show_progress_bar=False)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    rows = layer.lora_A["default"].weight
    torch.testing.assert_close(rows @ rows.T, torch.eye(rows.shape[0]), atol=1e-4, rtol=1e-4)  # orthonormal components
    plain = peft_core.get_peft_model(tiny_llama(), peft_lora.LoraConfig(target_modules=["q_proj"]))
    with pytest.raises(ConfigError, match="init_lora_weights='eva'"):
        initialize_lora_eva_weights(plain, EVA_DATA)
    with pytest.raises(ConfigError, match="dataloader"):
        initialize_lora_eva_weights(peft_core.get_peft_model(tiny_llama(), copy.deepcopy(config)))


def _error(weight, approx):
    return float(torch.linalg.norm(weight - approx))


@pytest.mark.parametrize("bits, iterations", [(4, 1), (4, 3), (8, 1)])
def test_loftq_shrinks_the_quantization_error(bits, iterations):
    pytest.importorskip("bitsandbytes")
    original = tiny_llama()
    config = peft_lora.LoraConfig(
        r=8, lora_alpha=8, target_modules=["q_proj", "down_proj"], init_lora_weights="loftq",
        loftq_config=LoftQConfig(loftq_bits=bits, loftq_iter=iterations),
    )
    model = peft_core.get_peft_model(tiny_llama(), config)
    for layer_index in range(2):
        layer = model.base_model.model.model.layers[layer_index].mlp.down_proj
        weight = original.model.layers[layer_index].mlp.down_proj.weight
        quantized = layer.get_base_layer().weight  # the dequantized weight the adapter corrects
        assert not torch.equal(quantized, weight)
        delta = layer.get_delta_weight("default")
        assert _error(weight, quantized + delta) < 0.8 * _error(weight, quantized)
    with pytest.raises(ConfigError, match="loftq_config"):
        peft_lora.LoraConfig(target_modules=["q_proj"], init_lora_weights="loftq")


def test_base_rewriting_inits_and_alora_are_refused_on_quantized_layers():
    bnb = pytest.importorskip("bitsandbytes")
    model = tiny_llama()
    linear = model.model.layers[0].self_attn.q_proj
    q4 = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=False, quant_type="nf4")
    q4.weight = bnb.nn.Params4bit(linear.weight.data.clone(), requires_grad=False, quant_type="nf4")
    model.model.layers[0].self_attn.q_proj = q4.to("cpu")
    with pytest.raises(ValueError, match="float precision"):
        peft_core.get_peft_model(
            copy.deepcopy(model),
            peft_lora.LoraConfig(target_modules=["q_proj"], init_lora_weights="loftq", loftq_config=LoftQConfig()),
        )
    with pytest.raises(ConfigError, match="unquantized"):
        peft_core.get_peft_model(
            copy.deepcopy(model), _quiet(peft_lora.LoraConfig, target_modules=["q_proj"], alora_invocation_tokens=[3])
        )


def test_replace_lora_weights_loftq_on_a_4bit_model(tmp_path):
    bnb = pytest.importorskip("bitsandbytes")
    from peft_lora.quantized.bnb import Linear4bit

    original = tiny_llama()
    original.save_pretrained(tmp_path / "base")
    quantized = tiny_llama()
    for layer in quantized.model.layers:  # q_proj quantized to NF4 on the CPU, as load_in_4bit would
        linear = layer.self_attn.q_proj
        q4 = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=False, quant_type="nf4")
        q4.weight = bnb.nn.Params4bit(linear.weight.data.clone(), requires_grad=False, quant_type="nf4")
        layer.self_attn.q_proj = q4.to("cpu")
    model = peft_core.get_peft_model(quantized, peft_lora.LoraConfig(r=8, lora_alpha=8, target_modules=["q_proj"]))
    calls = []
    replace_lora_weights_loftq(model, model_path=str(tmp_path / "base"), callback=lambda m, name: calls.append(name) or True)
    assert calls == ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"]
    assert isinstance(model.base_model.model.model.layers[0].self_attn.q_proj, Linear4bit)
    for index in range(2):
        layer = model.base_model.model.model.layers[index].self_attn.q_proj
        base = layer.get_base_layer()
        dequantized = bnb.functional.dequantize_4bit(base.weight.data, base.weight.quant_state)
        weight = original.model.layers[index].self_attn.q_proj.weight
        assert _error(weight, dequantized + layer.get_delta_weight("default")) < 0.8 * _error(weight, dequantized)
