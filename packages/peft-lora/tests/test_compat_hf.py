"""File compatibility with Hugging Face PEFT 0.21.2, in both directions.

For each case the same base weights are adapted by HF PEFT and by peft-lora with the same config;
the adapters are made non-trivial (random factors, perturbed magnitudes / copies / biases), saved,
and loaded by the other library onto a fresh copy of the base. Outputs must be bit-identical
(HF's own save/load round trips are), the saved key sets, shapes and dtypes must agree, the
configs must agree as parsed JSON, and HF must read our config without "Unexpected keyword".
"""

from __future__ import annotations

import copy
import json
import os
import warnings

import peft_core
import peft_lora
import pytest
import torch
from _lora_test_models import (
    conv_net,
    emb_mlp,
    images,
    input_ids,
    logits,
    randomize_lora,
    tiny_gpt2,
    tiny_llama,
)
from peft_core.testing.hf import (
    hf_peft,
    hf_peft_status,
    load_in_hf,
    read_adapter_config,
    round_trip_adapters,
    saved_tensor_specs,
)

peft = hf_peft()
if peft is None:  # absent, or `import peft` is not Hugging Face's distribution
    pytest.skip(hf_peft_status(), allow_module_level=True)
if peft.__version__ != "0.21.2":  # the reference version the format doc was checked against
    pytest.skip(f"needs Hugging Face peft 0.21.2, found {peft.__version__}", allow_module_level=True)
pytestmark = pytest.mark.compat

_config_json = read_adapter_config  # parsed, set fields as sets, the writer's peft_version dropped
_tensors = saved_tensor_specs  # key -> (shape, dtype)
_load_in_hf = load_in_hf  # and no "Unexpected keyword" warning


def _assert_same(actual: torch.Tensor, expected: torch.Tensor, exact: bool) -> None:
    if exact:
        assert torch.equal(actual, expected), (actual - expected).abs().max()
    else:
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)


def roundtrip(tmp_path, make_base, inputs, exact=True, biases=None, second=None, **config):
    """Run one compatibility case; `second` = (name, config kwargs) adds a second adapter."""
    adapters = {"default": config, **dict([second] if second else [])}
    result = round_trip_adapters(
        make_base,
        {name: peft.LoraConfig(**copy.deepcopy(kwargs)) for name, kwargs in adapters.items()},
        {name: peft_lora.LoraConfig(**copy.deepcopy(kwargs)) for name, kwargs in adapters.items()},
        lambda model: logits(model.eval(), inputs),
        tmp_path,
        lambda model, seed: randomize_lora(model, seed=seed, biases=biases),
        compare=lambda actual, expected: _assert_same(actual, expected, exact),
    )
    return result.hf_dir, result.our_dir


def test_llama_q_v_causal_lm(tmp_path):
    hf_dir, our_dir = roundtrip(
        tmp_path, tiny_llama, input_ids(), r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    keys = _tensors(our_dir)
    assert keys["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"] == ((16, 4), torch.float32)
    assert len(keys) == 8
    config = _config_json(our_dir)
    assert config["auto_mapping"] is None and config["task_type"] == "CAUSAL_LM"


def test_llama_task_type_none_writes_auto_mapping(tmp_path):
    _, our_dir = roundtrip(tmp_path, tiny_llama, input_ids(), r=2, target_modules=["k_proj", "o_proj"])
    assert _config_json(our_dir)["auto_mapping"] == {
        "base_model_class": "LlamaForCausalLM",
        "parent_library": "transformers.models.llama.modeling_llama",
    }


def test_llama_default_targets_all_linear_dropout(tmp_path):
    roundtrip(tmp_path / "default", tiny_llama, input_ids(), r=2, task_type="CAUSAL_LM")
    _, our_dir = roundtrip(
        tmp_path / "all", tiny_llama, input_ids(), r=2, target_modules="all-linear", lora_dropout=0.1
    )
    targets = _config_json(our_dir)["target_modules"]
    assert len(targets) == 14 and "model.layers.0.mlp.down_proj" in targets


def test_llama_rslora_rank_and_alpha_patterns(tmp_path):
    roundtrip(
        tmp_path,
        tiny_llama,
        input_ids(),
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern={"layers.0.self_attn.q_proj": 2, r"model.layers.1\..*": 6},
        alpha_pattern={"v_proj": 32},
    )


def test_llama_layers_to_transform_and_exclude(tmp_path):
    roundtrip(
        tmp_path,
        tiny_llama,
        input_ids(),
        r=2,
        target_modules=["q_proj", "v_proj", "up_proj"],
        layers_to_transform=[1],
        layers_pattern="layers",
        exclude_modules=["model.layers.1.mlp.up_proj"],
    )


def test_llama_dora_modules_to_save_and_second_adapter(tmp_path):
    hf_dir, our_dir = roundtrip(
        tmp_path,
        tiny_llama,
        input_ids(),
        exact=True,
        r=4,
        target_modules=["q_proj", "v_proj"],
        modules_to_save=["lm_head"],
        use_dora=True,
        second=("second", dict(r=2, target_modules=["o_proj"])),
    )
    keys = _tensors(our_dir)
    assert keys["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] == ((32,), torch.float32)
    assert keys["base_model.model.lm_head.weight"] == ((128, 32), torch.float32)
    assert sorted(os.listdir(our_dir)) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "second"]


def test_llama_embedding_target(tmp_path):
    _, our_dir = roundtrip(tmp_path, tiny_llama, input_ids(), r=2, target_modules=["embed_tokens", "q_proj"])
    keys = _tensors(our_dir)
    assert keys["base_model.model.model.embed_tokens.lora_embedding_A"] == ((2, 128), torch.float32)
    assert keys["base_model.model.model.embed_tokens.lora_embedding_B"] == ((32, 2), torch.float32)
    assert keys["base_model.model.model.embed_tokens.base_layer.weight"] == ((128, 32), torch.float32)


def test_embedding_dora_custom_model(tmp_path):
    roundtrip(tmp_path, emb_mlp, input_ids(), r=3, target_modules=["emb", "lin0", "lin1"], use_dora=True)


@pytest.mark.parametrize("bias", ["none", "all", "lora_only"])
def test_gpt2_conv1d_fan_in_fan_out_and_bias(tmp_path, bias):
    _, our_dir = roundtrip(
        tmp_path, tiny_gpt2, input_ids(), biases=bias, r=4, target_modules=["c_attn", "mlp.c_proj"], bias=bias
    )
    config = _config_json(our_dir)
    assert config["fan_in_fan_out"] is True and config["bias"] == bias
    keys = _tensors(our_dir)
    assert keys["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"] == ((96, 4), torch.float32)
    has_ln_bias = "base_model.model.transformer.h.0.ln_1.bias" in keys
    has_target_bias = "base_model.model.transformer.h.0.attn.c_attn.base_layer.bias" in keys
    assert (has_ln_bias, has_target_bias) == {"none": (False, False), "all": (True, True), "lora_only": (False, True)}[
        bias
    ]


def test_gpt2_dora_and_lora_bias(tmp_path):
    roundtrip(tmp_path / "dora", tiny_gpt2, input_ids(), r=4, target_modules=["c_attn"], use_dora=True)
    roundtrip(tmp_path / "bias", tiny_gpt2, input_ids(), r=4, target_modules=["c_fc", "c_proj"], lora_bias=True)


def test_conv_model(tmp_path):
    roundtrip(tmp_path, conv_net, images(), r=4, target_modules=["conv2d", "pointwise", "conv1d", "conv3d", "head"])


def test_conv_model_dora(tmp_path):
    _, our_dir = roundtrip(tmp_path, conv_net, images(), r=2, target_modules=["conv2d", "pointwise"], use_dora=True)
    keys = _tensors(our_dir)
    assert keys["base_model.model.conv2d.lora_A.weight"] == ((2, 3, 3, 3), torch.float32)
    assert keys["base_model.model.conv2d.lora_B.weight"] == ((8, 2, 1, 1), torch.float32)
    assert keys["base_model.model.conv2d.lora_magnitude_vector"] == ((1, 8, 1, 1), torch.float32)


def _same_adapter_in_both(make_base, config, seed):
    """HF's LoRA adapter for `config` with random values ("as if trained"), and ours holding the same state."""
    base = make_base()
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**config))
    randomize_lora(hf_model, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = peft_core.get_peft_model(copy.deepcopy(base), peft_lora.LoraConfig(**config))
    ours.load_state_dict(hf_model.state_dict())
    return hf_model, ours


def test_hf_merge_and_unload_matches_ours():
    """Merged weights (DoRA, Conv1D, lora_bias) agree with HF's merge within float tolerance."""
    for make, config, inputs in (
        (tiny_gpt2, dict(r=4, target_modules=["c_attn", "c_fc"], use_dora=True), input_ids()),
        (tiny_gpt2, dict(r=4, target_modules=["c_proj"], lora_bias=True), input_ids()),
        (conv_net, dict(r=2, target_modules=["conv2d", "pointwise", "conv1d"], use_dora=True), images()),
        (emb_mlp, dict(r=2, target_modules=["emb", "lin0"], use_dora=True), input_ids()),
    ):
        hf_model, ours = _same_adapter_in_both(make, config, seed=3)
        hf_merged = hf_model.merge_and_unload()
        our_merged = ours.merge_and_unload()
        for (name, a), (name_b, b) in zip(hf_merged.state_dict().items(), our_merged.state_dict().items()):
            assert name == name_b
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6, msg=name)
        torch.testing.assert_close(logits(our_merged, inputs), logits(hf_merged, inputs), atol=1e-6, rtol=1e-6)


def test_our_config_fields_are_hfs():
    ours = peft_lora.LoraConfig(target_modules=["q_proj"]).to_dict()
    theirs = peft.LoraConfig(target_modules=["q_proj"]).to_dict()
    assert set(ours) == set(theirs)
    for key in set(ours) - {"peft_version", "target_modules", "peft_type"}:
        assert ours[key] == (theirs[key] if not isinstance(theirs[key], set) else sorted(theirs[key])), key
    assert theirs["peft_type"] == "LORA" and ours["peft_type"] == "LORA"


def test_hf_minimal_config_loads(tmp_path):
    """A hand-written minimal config (as on the Hub) loads, and loading warns about nothing HF would not."""
    base = tiny_llama()
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj"]))
    randomize_lora(hf_model)
    hf_model.save_pretrained(tmp_path)
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 16, "target_modules": ["q_proj"]})
    )
    ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert torch.equal(logits(ours, input_ids()), logits(hf_model, input_ids()))


def test_training_gradients_match_hf():
    """One training step's loss and adapter gradients agree with HF (Llama has no biases: DoRA's in-place trap)."""
    for make, config in (
        (tiny_llama, dict(r=4, target_modules=["q_proj", "v_proj", "embed_tokens"], use_dora=True)),
        (tiny_llama, dict(r=4, target_modules=["q_proj", "v_proj", "embed_tokens"], lora_dropout=0.0)),
        (tiny_gpt2, dict(r=4, target_modules=["c_attn", "c_proj"], use_dora=True, bias="all")),
    ):
        hf_model, ours = _same_adapter_in_both(make, config, seed=4)
        ids = input_ids()
        losses, grads = [], []
        for model in (hf_model, ours):
            model.train()
            torch.manual_seed(0)  # GPT-2's dropouts draw the same masks in both
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            losses.append(loss.detach())
            grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        assert set(grads[0]) == set(grads[1]) and grads[0]
        assert torch.equal(losses[0], losses[1])
        for name, grad in grads[0].items():
            torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5, msg=name)
