"""What is particular to X-LoRA: the classifier and its scalings, the token-wise mixing of several LoRA experts
(against an independent computation), top-k, the two passes in generation, trained experts in files, refusals,
and the comparisons with Hugging Face PEFT (outputs, scalings, files, generation). The kit checks the rest."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from peft_core import AdapterLoadError, AdapterNotFoundError, ConfigError, PeftModel, UnsupportedOperationError, get_peft_model
from peft_core.testing import hf, models
from peft_core.testing.tasks import batch, greedy_by_forward

from peft_xlora import XLoraConfig, XLoraLinear, layer_scalings
from peft_xlora.conformance import expert_paths
from peft_xlora.layer import CURRENT_CALL, XLoraCall

torch.set_num_threads(1)


def _config(experts=("0", "1", "2"), **kwargs) -> XLoraConfig:
    paths = expert_paths()
    return XLoraConfig(task_type="CAUSAL_LM", hidden_size=32, adapters={k: paths[k] for k in experts}, **kwargs)


def _xlora(seed: int = 0, base=None, **kwargs):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(base if base is not None else models.LLAMA.build(), _config(**kwargs)).eval()


def _ids(rows: int = 2, length: int = 6, seed: int = 3) -> torch.Tensor:
    return torch.randint(2, models.VOCAB, (rows, length), generator=torch.Generator().manual_seed(seed))


def test_the_classifier_gives_each_token_a_softmax_over_the_experts():
    model = _xlora(xlora_depth=2, xlora_size=16, softmax_temperature=0.5)
    classifier = model.base_model.internal_xlora_classifier["default"]
    assert [k for k in classifier.state_dict()] == ["layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias"]
    with torch.no_grad():
        model(input_ids=_ids())
    scalings = model.get_latest_scalings()
    n_layers = sum(isinstance(m, XLoraLinear) for m in model.modules()) + 1  # + the embedding of expert "1"
    assert scalings.shape == (2, 6, n_layers, 3) and classifier.n_layers == n_layers
    torch.testing.assert_close(scalings.sum(-1), torch.ones(2, 6, n_layers))
    assert torch.equal(scalings[:, :, 0], scalings[:, :, -1])  # not layerwise: every layer the same
    # the classifier reads the last hidden states of the scaling pass (the base model: scaling_pass_value 0)
    hidden = models.LLAMA.build()(input_ids=_ids(), output_hidden_states=True).hidden_states[-1]
    with torch.no_grad():
        logits = classifier.layers(hidden)
    torch.testing.assert_close(scalings[:, :, 0], torch.softmax(logits / 0.5, -1), rtol=0, atol=1e-6)


def test_layerwise_scalings_differ_per_layer():
    model = _xlora(layerwise_scalings=True)
    with torch.no_grad():
        model(input_ids=_ids())
    scalings = model.get_latest_scalings()
    assert not torch.equal(scalings[:, :, 0], scalings[:, :, 1])


def test_a_layer_mixes_its_experts_token_by_token():
    model = _xlora(global_scaling_weight=0.5)
    base = model.base_model
    layer = base.model.model.layers[0].self_attn.q_proj  # experts "0" (r=4) and "2" (r=2) adapt q_proj
    assert isinstance(layer, XLoraLinear)
    number = layer.xlora_layer_number["default"]
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(4))
    scalings = torch.rand(2, 5, base.internal_xlora_classifier["default"].n_layers, 3, generator=torch.Generator().manual_seed(5))
    config = model.peft_config["default"]
    token = CURRENT_CALL.set(XLoraCall("default", base._experts["default"], scalings, config))
    try:
        with torch.no_grad():
            got = layer(x)
    finally:
        CURRENT_CALL.reset(token)
    expected = layer.get_base_layer()(x).double()
    for n, expert in enumerate(base._experts["default"]):
        if expert not in layer.lora_A:
            continue
        a, b = layer.lora_A[expert].weight.double(), layer.lora_B[expert].weight.double()
        expected = expected + (x.double() * scalings[:, :, number, n : n + 1].double()) @ a.T @ b.T * layer.scaling[expert] * 0.5
    assert set(layer.lora_A) == {"default__0", "default__2"}
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)
    with torch.no_grad():  # outside an X-LoRA pass the experts do nothing
        assert torch.equal(layer(x), layer.get_base_layer()(x))


def test_top_k_keeps_the_largest_weights_and_can_renormalise_them():
    scalings = torch.tensor([[[[0.1, 0.5, 0.3, 0.1]]]])
    plain = layer_scalings(scalings, 0, XLoraConfig(hidden_size=8, adapters={}, top_k_lora=2))
    assert torch.equal(plain, torch.tensor([[[0.0, 0.5, 0.3, 0.0]]]))
    soft = layer_scalings(scalings, 0, XLoraConfig(hidden_size=8, adapters={}, top_k_lora=2, enable_softmax=False, enable_softmax_topk=True))
    torch.testing.assert_close(soft, torch.tensor([[[0.0, *torch.softmax(torch.tensor([0.5, 0.3]), 0).tolist(), 0.0]]]).view(1, 1, 4))


def test_generation_recomputes_the_scalings_of_the_whole_sequence():
    model = _xlora(seed=1)
    ids, mask = batch()
    with torch.no_grad():
        got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert torch.equal(got, greedy_by_forward(model, "CAUSAL_LM", steps=3))
    from transformers import DynamicCache

    cache = DynamicCache()
    models.LLAMA.build()(input_ids=ids, cache=cache, use_cache=True)
    with pytest.raises(UnsupportedOperationError, match="cache"):
        model(input_ids=ids[:, -1:], cache=cache)


def test_trained_experts_are_saved_and_reloaded(tmp_path):
    model = _xlora(experts=("0", "2"), use_trainable_adapters=True)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert any(".lora_A.default__0." in n for n in trainable) and any("internal_xlora_classifier" in n for n in trainable)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_B.default__" in name:
                param.add_(0.3)
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    keys = set(load_file(tmp_path / "adapter_model.safetensors"))
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_B.0.weight" in keys
    assert "base_model.model.model.layers.1.self_attn.o_proj.lora_A.2.weight" in keys
    loaded = PeftModel.from_pretrained(models.LLAMA.build(), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=_ids()).logits, model(input_ids=_ids()).logits)


def test_refusals_leave_the_model_as_it_was(tmp_path):
    paths = expert_paths()
    base = models.LLAMA.build()
    with pytest.raises(ConfigError, match="hidden size is 32"):
        get_peft_model(base, XLoraConfig(hidden_size=64, adapters={"0": paths["0"]}))
    with pytest.raises(AdapterNotFoundError):
        get_peft_model(base, XLoraConfig(hidden_size=32, adapters={"0": paths["0"], "9": str(tmp_path / "nowhere")}))
    assert not any("lora" in n for n, _ in base.named_parameters())
    from peft_core.testing import models as m
    from peft_lora import LoraConfig

    dora = get_peft_model(m.LLAMA.build(), LoraConfig(r=2, use_dora=True, target_modules=["q_proj"]))
    dora.save_pretrained(tmp_path / "dora")
    with pytest.raises(ConfigError, match="use_dora"):
        get_peft_model(base, XLoraConfig(hidden_size=32, adapters={"d": str(tmp_path / "dora")}))
    with pytest.raises(ConfigError, match="at least one"):
        get_peft_model(base, XLoraConfig(hidden_size=32, adapters={}))
    model = _xlora(experts=("0",))
    with pytest.raises(AdapterNotFoundError):
        model.add_adapter("broken", XLoraConfig(hidden_size=32, adapters={"1": paths["1"], "x": str(tmp_path / "nowhere")}))
    assert not any("broken" in n for n, _ in model.named_parameters())


def test_scalings_api():
    model = _xlora()
    model.set_topk_lora(1)
    assert model.peft_config["default"].top_k_lora == 1
    model.set_global_scaling_weight(2.0)
    assert model.get_global_scaling_weight() == 2.0 and model.peft_config["default"].global_scaling_weight == 2.0
    model.set_scaling_pass_value(None)
    assert model.peft_config["default"].scaling_pass_value == pytest.approx(1 / 3)
    model.enable_scalings_logging()
    with torch.no_grad():
        model(input_ids=_ids(length=4))
        model(input_ids=_ids(length=6))
        model(input_ids=_ids(length=4))
    log = model.get_scalings_log()
    assert len(log) == 3 and sorted(model.get_bucketed_scalings_log()) == [4, 6]
    assert model.get_bucketed_scalings_log()[4][0] == [0, 2]
    model.disable_scalings_logging()
    model.clear_scalings_log()
    assert model.get_scalings_log() == []


# -- against Hugging Face PEFT ------------------------------------------------------------------------
peft = hf.hf_peft()
needs_hf = pytest.mark.skipif(peft is None, reason=hf.hf_peft_status())

VARIANTS = {
    "dense": {},
    "two-layer-classifier": {"xlora_depth": 2, "xlora_size": 16},
    "layerwise": {"layerwise_scalings": True, "softmax_temperature": 0.7},
    "top-k": {"top_k_lora": 2},
    "top-k-softmax": {"top_k_lora": 1, "enable_softmax": False, "enable_softmax_topk": True},
    "scaling-pass-and-weight": {"scaling_pass_value": 0.25, "global_scaling_weight": 1.5},
}


def _hf_pair(**kwargs):
    """Ours and Hugging Face's, on the same experts (HF needs them named "0", "1", ...) and classifier."""
    ours = _xlora(**kwargs)
    base = models.LLAMA.build()
    base.config.use_cache = False  # HF refuses a model that caches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(base, peft.XLoraConfig(**_config(**kwargs).to_dict() | {"peft_version": None}))
    theirs.eval()
    state = ours.base_model.internal_xlora_classifier["default"].state_dict()
    theirs.base_model.internal_xlora_classifier.load_state_dict(state)
    return ours, theirs


@needs_hf
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_outputs_and_scalings_equal_hugging_faces(variant):
    ours, theirs = _hf_pair(**VARIANTS[variant])
    ids = _ids(rows=3)
    with torch.no_grad():
        a, b = ours(input_ids=ids).logits, theirs(input_ids=ids).logits
    assert torch.equal(a, b)
    assert torch.equal(ours.get_latest_scalings(), theirs.get_latest_scalings())


@needs_hf
def test_generation_equals_hugging_faces():
    ours, theirs = _hf_pair(top_k_lora=2)
    ids = _ids()
    kwargs = dict(max_new_tokens=3, do_sample=False, pad_token_id=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(ours.generate(input_ids=ids, **kwargs), theirs.generate(input_ids=ids, **kwargs))


@needs_hf
def test_our_file_loads_in_hugging_face(tmp_path):
    ours, _ = _hf_pair(xlora_depth=2, xlora_size=16)
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "XLORA" and config["adapters"] == _config().adapters
    base = models.LLAMA.build()
    base.config.use_cache = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = peft.PeftModel.from_pretrained(base, tmp_path, adapters=_config().adapters).eval()
    ids = _ids()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, ours(input_ids=ids).logits)


@needs_hf
def test_hugging_faces_files_lose_the_first_classifier_layer_and_are_refused(tmp_path):
    """HF 0.21.2 drops classifier keys whose layer index reads like an expert's name ("0", "1", ...) when
    saving, so its files lack `layers.0.*`; loading such a file is refused instead of running a classifier
    with random first-layer weights."""
    _, theirs = _hf_pair(xlora_depth=2, xlora_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.save_pretrained(tmp_path / "hf")
    from safetensors.torch import load_file

    assert not any(".layers.0." in k for k in load_file(tmp_path / "hf" / "adapter_model.safetensors"))
    shutil.rmtree(tmp_path / "hf" / "0", ignore_errors=True)
    with pytest.raises(AdapterLoadError, match="layers.0"):
        PeftModel.from_pretrained(models.LLAMA.build(), tmp_path / "hf")
