"""Hotswapping LoRA adapters in place (peft_core.hotswap with LoRA's support), without compiling.

After a swap the model gives the outputs of a fresh load of the new adapter, for different ranks,
alphas, rsLoRA and patterns, on Linear (Llama, GPT-2's Conv1D), Conv (also grouped) and Embedding
layers and DoRA; a new adapter targeting fewer modules leaves the others as no-ops; anything that
can't be swapped raises before a single tensor changes. Compiled models: test_hotswap_compile.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _lora_test_models import conv_net, emb_mlp, images, input_ids, logits, randomize_lora, tiny_gpt2, tiny_llama
from peft_core import PeftModel, get_peft_model
from peft_core.errors import HotswapError
from peft_core.hotswap import (
    check_hotswap_configs_compatible,
    hotswap_adapter,
    hotswap_adapter_from_state_dict,
    prepare_model_for_compiled_hotswap,
)
from torch import nn

from peft_lora import LoraConfig


def _saved(tmp_path, base, config, name, seed):
    model = get_peft_model(copy.deepcopy(base), config)
    randomize_lora(model, seed=seed)
    path = tmp_path / name
    model.save_pretrained(path)
    return path


def _fresh(base, path, inputs):
    return logits(PeftModel.from_pretrained(copy.deepcopy(base), path), inputs)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _configs(targets, *rank_alpha, **extra):
    """LoRA configs of the same targets, one per (r, lora_alpha): the adapters swapped in turn."""
    return [LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, **extra) for r, alpha in rank_alpha]


CASES = {
    "llama": (
        tiny_llama,
        input_ids,
        _configs(["q_proj", "v_proj"], (4, 8), (8, 3))
        + [LoraConfig(r=2, lora_alpha=5, target_modules=["q_proj", "v_proj"], rank_pattern={"v_proj": 3})],
    ),
    "llama-rslora": (tiny_llama, input_ids, _configs(["q_proj"], (4, 8), (6, 2), use_rslora=True)),
    "gpt2-conv1d": (tiny_gpt2, input_ids, _configs(["c_attn", "mlp.c_proj"], (4, 8), (2, 7))),
    "conv": (conv_net, images, _configs(["conv2d", "conv1d", "conv3d", "head"], (4, 8), (2, 3))),
    "embedding": (emb_mlp, input_ids, _configs(["emb", "lin0"], (4, 8), (6, 2))),
    "dora": (tiny_llama, input_ids, _configs(["q_proj", "v_proj"], (4, 8), (2, 3), use_dora=True)),
}


@pytest.mark.parametrize("prepared", [False, True], ids=["plain", "prepared"])
@pytest.mark.parametrize("case", list(CASES))
def test_swapped_adapter_gives_the_new_adapters_outputs(tmp_path, case, prepared):
    make, make_inputs, configs = CASES[case]
    base, inputs = make(), make_inputs()
    paths = [_saved(tmp_path, base, config, f"a{i}", seed=10 + i) for i, config in enumerate(configs)]
    expected = [_fresh(base, path, inputs) for path in paths]
    model = PeftModel.from_pretrained(copy.deepcopy(base), paths[0])
    if prepared:
        prepare_model_for_compiled_hotswap(model, target_rank=8)
        torch.testing.assert_close(logits(model, inputs), expected[0], atol=1e-5, rtol=1e-5)
    tensors = {k: v for k, v in model.named_parameters() if ".lora_" in k}
    for i in [*range(1, len(paths)), 0]:
        hotswap_adapter(model, paths[i], adapter_name="default")
        torch.testing.assert_close(logits(model, inputs), expected[i], atol=1e-5, rtol=1e-5, msg=f"adapter {i}")
        if prepared:  # the same tensors, changed in place (what a compiled graph holds on to)
            assert all(p is tensors[k] for k, p in model.named_parameters() if ".lora_" in k)
    assert model.peft_config["default"].lora_alpha == configs[0].lora_alpha


def test_new_adapter_targeting_fewer_modules_leaves_the_others_as_no_ops(tmp_path):
    base, inputs = tiny_llama(), input_ids()
    first = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True), "first", 1)
    second = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True), "second", 2)
    model = PeftModel.from_pretrained(copy.deepcopy(base), first)
    hotswap_adapter(model, second, adapter_name="default")
    torch.testing.assert_close(logits(model, inputs), _fresh(base, second, inputs), atol=1e-5, rtol=1e-5)


def test_grouped_conv_lora_is_padded_and_swapped_group_by_group(tmp_path):
    class Grouped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 8, kernel_size=3, padding=1, groups=2)

        def forward(self, x):
            return self.conv(x)

    torch.manual_seed(0)
    base = Grouped().eval()
    inputs = torch.randn(2, 4, 5, 5)
    paths = [
        _saved(tmp_path, base, LoraConfig(r=2, lora_alpha=4, target_modules=["conv"]), "a", 1),
        _saved(tmp_path, base, LoraConfig(r=4, lora_alpha=3, target_modules=["conv"]), "b", 2),
    ]
    model = PeftModel.from_pretrained(copy.deepcopy(base), paths[0])
    prepare_model_for_compiled_hotswap(model, target_rank=6)
    torch.testing.assert_close(logits(model, inputs), _fresh(base, paths[0], inputs), atol=1e-5, rtol=1e-5)
    hotswap_adapter(model, paths[1], "default")
    torch.testing.assert_close(logits(model, inputs), _fresh(base, paths[1], inputs), atol=1e-5, rtol=1e-5)
    with pytest.raises(HotswapError, match="divisible"):
        prepare_model_for_compiled_hotswap(PeftModel.from_pretrained(copy.deepcopy(base), paths[0]), target_rank=5)


def test_a_non_default_adapter_is_swapped_and_the_other_kept(tmp_path):
    base, inputs = tiny_llama(), input_ids()
    a = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj"]), "a", 1)
    b = _saved(tmp_path, base, LoraConfig(r=2, lora_alpha=16, target_modules=["q_proj"]), "b", 2)
    model = PeftModel.from_pretrained(copy.deepcopy(base), a)
    model.load_adapter(a, "other")
    hotswap_adapter(model, b, "other")
    model.set_adapter("other")
    torch.testing.assert_close(logits(model, inputs), _fresh(base, b, inputs), atol=1e-5, rtol=1e-5)
    model.set_adapter("default")
    torch.testing.assert_close(logits(model, inputs), _fresh(base, a, inputs), atol=1e-5, rtol=1e-5)


def test_state_dict_in_the_models_key_form_is_accepted(tmp_path):
    base, inputs = tiny_llama(), input_ids()
    a = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj"]), "a", 1)
    b_config = LoraConfig(r=4, lora_alpha=2, target_modules=["q_proj"])
    donor = get_peft_model(copy.deepcopy(base), copy.deepcopy(b_config))
    randomize_lora(donor, seed=5)
    state = {k: v for k, v in donor.state_dict().items() if ".lora_" in k}  # HF's form: with the adapter name
    model = PeftModel.from_pretrained(copy.deepcopy(base), a)
    hotswap_adapter_from_state_dict(model, state, "default", b_config)
    torch.testing.assert_close(logits(model, inputs), logits(donor, inputs), atol=1e-5, rtol=1e-5)


def test_unswappable_adapters_raise_before_anything_changes(tmp_path):
    base = tiny_llama()
    a = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj"]), "a", 1)
    wider = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj", "k_proj"]), "wider", 2)
    dora = _saved(tmp_path, base, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True), "dora", 3)
    big = _saved(tmp_path, base, LoraConfig(r=8, target_modules=["q_proj"]), "big", 4)
    model = PeftModel.from_pretrained(copy.deepcopy(base), a)
    prepare_model_for_compiled_hotswap(model, target_rank=6)
    before = _state(model)
    with pytest.raises(HotswapError, match="unexpected keys"):
        hotswap_adapter(model, wider, "default")
    with pytest.raises(HotswapError, match="use_dora"):
        hotswap_adapter(model, dora, "default")
    with pytest.raises(HotswapError, match="target_rank"):
        hotswap_adapter(model, big, "default")  # rank 8 > the prepared 6
    with pytest.raises(HotswapError, match="no adapter named"):
        hotswap_adapter(model, a, "missing")
    after = _state(model)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    model.merge_adapter()
    with pytest.raises(HotswapError, match="merged"):
        hotswap_adapter(model, a, "default")


def test_a_larger_rank_on_an_unprepared_uncompiled_model_replaces_the_tensors(tmp_path):
    base, inputs = tiny_llama(), input_ids()
    a = _saved(tmp_path, base, LoraConfig(r=2, target_modules=["q_proj"]), "a", 1)
    big = _saved(tmp_path, base, LoraConfig(r=8, lora_alpha=4, target_modules=["q_proj"]), "big", 2)
    model = PeftModel.from_pretrained(copy.deepcopy(base), a)
    hotswap_adapter(model, big, "default")
    torch.testing.assert_close(logits(model, inputs), _fresh(base, big, inputs), atol=1e-5, rtol=1e-5)


def test_configs_compatibility_and_prepare_arguments():
    check_hotswap_configs_compatible(LoraConfig(r=4, lora_alpha=8), LoraConfig(r=16, lora_alpha=2))
    for field, value in [("use_rslora", True), ("lora_dropout", 0.1), ("alpha_pattern", {"q": 2}), ("use_dora", True)]:
        with pytest.raises(HotswapError, match=field):
            check_hotswap_configs_compatible(LoraConfig(), LoraConfig(**{field: value}))
    base = tiny_llama()
    config = LoraConfig(r=2, target_modules=["q_proj"], rank_pattern={"q_proj": 3})
    model = get_peft_model(copy.deepcopy(base), config)
    prepare_model_for_compiled_hotswap(model, target_rank=8, config=model.peft_config)
    assert model.peft_config["default"].r == 8 and model.peft_config["default"].rank_pattern == {"q_proj": 8}
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(layer.scaling["default"], torch.Tensor) and layer.lora_A["default"].weight.shape[0] == 8
    with pytest.raises(HotswapError, match="target_rank"):
        prepare_model_for_compiled_hotswap(model, target_rank=4)  # smaller than what is there
    with pytest.raises(HotswapError, match="before"):
        prepare_model_for_compiled_hotswap(torch.compile(model))
    with pytest.raises(HotswapError, match="load an adapter first"):
        prepare_model_for_compiled_hotswap(copy.deepcopy(base))
