"""Mixed-method models with real method packages, against Hugging Face PEFT's `PeftMixedModel`.

- LoRA + LoHa + LoKr saved here (one folder per adapter) load in HF's PeftMixedModel (adapters loaded in
  the order they were added) with bit-identical logits; adapters made in HF's mixed model load here
  with bit-identical logits, whether exported from HF's mixed model or saved by single-method HF models.
- LoRA + OFT (HF supports OFT in mixed models) give HF's logits; BOFT (which HF's mixed model refuses)
  wrapping LoRA computes BOFT on the LoRA-adapted layer.
- AdaLoRA and LoRA on the same module nest instead of sharing a layer.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("transformers")
hf = pytest.importorskip("peft")

from peft_core import PeftMixedModel, get_peft_model  # noqa: E402
from peft_lora import LoraConfig  # noqa: E402

pytestmark = pytest.mark.compat


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def _ids():
    torch.manual_seed(5)
    return torch.randint(0, 128, (2, 7))


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


# (adapter name, our config, HF config): random inits (not no-ops), overlapping targets so layers nest
def _three_methods(ours: bool):
    from peft_loha import LoHaConfig
    from peft_lokr import LoKrConfig

    lib = None if ours else hf
    lora = (LoraConfig if ours else lib.LoraConfig)(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    loha = (LoHaConfig if ours else lib.LoHaConfig)(r=2, alpha=4, target_modules=["q_proj", "o_proj"], init_weights=False)
    lokr = (LoKrConfig if ours else lib.LoKrConfig)(
        r=2, alpha=4, target_modules=["v_proj", "q_proj", "down_proj"], init_weights=False
    )
    return [("default", lora), ("loha", loha), ("lokr", lokr)]


def _hf_mixed_from_folders(base, folders):
    (first, path), *rest = folders
    model = hf.PeftMixedModel.from_pretrained(base, path, first)
    for name, path in rest:
        model.load_adapter(path, name)
    model.set_adapter([name for name, _ in folders])
    return model.eval()


def _ours_from_folders(base, folders):
    (first, path), *rest = folders
    model = PeftMixedModel.from_pretrained(base, path, first)
    for name, path in rest:
        model.load_adapter(path, name)
    model.set_adapter([name for name, _ in folders])
    return model.eval()


def test_lora_loha_lokr_saved_here_load_in_hf_mixed_model_with_identical_logits(tmp_path):
    base = _tiny_llama()
    ids = _ids()
    torch.manual_seed(1)
    (first, config), *rest = _three_methods(ours=True)
    model = get_peft_model(copy.deepcopy(base), config, adapter_name=first, mixed=True)
    for name, cfg in rest:
        model.add_adapter(name, cfg)
    model.set_adapter(["default", "loha", "lokr"])
    model.eval()
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert [type(m).__module__.split(".")[0] for m in (q_proj, q_proj.base_layer, q_proj.base_layer.base_layer)] == [
        "peft_lokr",
        "peft_loha",
        "peft_lora",
    ]
    ours = _logits(model, ids)
    assert not torch.allclose(ours, _logits(base, ids))

    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "loha", "lokr"]
    folders = [("default", tmp_path), ("loha", tmp_path / "loha"), ("lokr", tmp_path / "lokr")]
    theirs = _logits(_hf_mixed_from_folders(copy.deepcopy(base), folders), ids)
    assert torch.equal(ours, theirs)
    # and our own reload
    assert torch.equal(_logits(_ours_from_folders(copy.deepcopy(base), folders), ids), ours)


def test_adapters_of_an_hf_mixed_model_load_here_with_identical_logits(tmp_path):
    base = _tiny_llama()
    ids = _ids()
    torch.manual_seed(2)
    (first, config), *rest = _three_methods(ours=False)
    hf_model = hf.get_peft_model(copy.deepcopy(base), config, adapter_name=first, mixed=True)
    for name, cfg in rest:
        hf_model.add_adapter(name, cfg)
    hf_model.set_adapter(["default", "loha", "lokr"])
    hf_model.eval()
    theirs = _logits(hf_model, ids)

    # HF's PeftMixedModel can't save_pretrained; export each adapter the way HF's own state-dict function gives it
    # (nested adapters keep their in-model `base_layer.` paths there)
    folders = []
    for name in ("default", "loha", "lokr"):
        folder = tmp_path / name
        folder.mkdir()
        save_file(hf.get_peft_model_state_dict(hf_model, adapter_name=name), folder / "adapter_model.safetensors")
        hf_model.peft_config[name].save_pretrained(folder)
        folders.append((name, folder))
    assert torch.equal(_logits(_ours_from_folders(copy.deepcopy(base), folders), ids), theirs)


def test_adapters_saved_by_single_method_hf_models_give_hf_mixed_logits_here(tmp_path):
    base = _tiny_llama()
    ids = _ids()
    folders = []
    for seed, (name, config) in enumerate(_three_methods(ours=False)):
        torch.manual_seed(10 + seed)
        single = hf.get_peft_model(copy.deepcopy(base), config)
        single.save_pretrained(tmp_path / name)
        folders.append((name, tmp_path / name))
    theirs = _logits(_hf_mixed_from_folders(copy.deepcopy(base), folders), ids)
    assert torch.equal(_logits(_ours_from_folders(copy.deepcopy(base), folders), ids), theirs)


def test_lora_and_oft_match_hf_mixed_model(tmp_path):
    from peft_oft import OFTConfig

    base = _tiny_llama()
    ids = _ids()
    torch.manual_seed(3)
    model = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
        mixed=True,
    )
    model.add_adapter("oft", OFTConfig(r=0, oft_block_size=8, target_modules=["q_proj", "k_proj"], init_weights=False))
    model.set_adapter(["default", "oft"])
    model.eval()
    ours = _logits(model, ids)
    model.save_pretrained(tmp_path)
    theirs = _logits(_hf_mixed_from_folders(copy.deepcopy(base), [("default", tmp_path), ("oft", tmp_path / "oft")]), ids)
    assert torch.equal(ours, theirs)
    # merging goes innermost first: the OFT rotation acts on the LoRA-adapted weight
    merged = model.merge_and_unload()
    torch.testing.assert_close(_logits(merged, ids), ours, atol=1e-5, rtol=1e-5)


def test_boft_wrapping_lora_applies_boft_to_the_lora_adapted_layer():
    from peft_boft import BOFTConfig, BOFTModel

    base = _tiny_llama()
    ids = _ids()
    torch.manual_seed(4)
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False), mixed=True
    )
    boft = BOFTConfig(boft_block_size=4, target_modules=["q_proj"], init_weights=False)
    model.add_adapter("boft", boft)
    model.set_adapter(["default", "boft"])
    model.eval()
    ours = _logits(model, ids)
    # reference: merge the LoRA into the base, then BOFT alone (single-method model) with the same tensors
    lora_only = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, target_modules=["q_proj"]))
    for layer_index in range(2):
        inner = model.base_model.model.model.layers[layer_index].self_attn.q_proj.base_layer
        target = lora_only.base_model.model.model.layers[layer_index].self_attn.q_proj
        with torch.no_grad():
            for factor in ("lora_A", "lora_B"):
                getattr(target, factor)["default"].weight.copy_(getattr(inner, factor)["default"].weight)
    reference = get_peft_model(lora_only.merge_and_unload(), BOFTConfig(boft_block_size=4, target_modules=["q_proj"]))
    for layer_index in range(2):
        outer = model.base_model.model.model.layers[layer_index].self_attn.q_proj
        ref = reference.base_model.model.model.layers[layer_index].self_attn.q_proj
        assert isinstance(ref.base_layer, torch.nn.Linear)
        with torch.no_grad():
            ref.boft_R["default"].copy_(outer.boft_R["boft"])
            ref.boft_s["default"].copy_(outer.boft_s["boft"])
    assert isinstance(reference.base_model, BOFTModel)
    torch.testing.assert_close(ours, _logits(reference.eval(), ids), atol=1e-5, rtol=1e-5)


def test_adalora_and_lora_on_one_module_nest_and_match_hf(tmp_path):
    from peft_adalora import AdaLoraConfig

    base = _tiny_llama()
    ids = _ids()
    torch.manual_seed(6)
    model = get_peft_model(
        copy.deepcopy(base),
        AdaLoraConfig(init_r=4, target_r=2, total_step=10, target_modules=["q_proj"], inference_mode=True),
        mixed=True,
    )
    model.add_adapter("lora", LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj).__module__.startswith("peft_lora") and type(q_proj.base_layer).__module__.startswith("peft_adalora")
    with torch.no_grad():  # AdaLoRA starts as a no-op (E = 0): give it values
        for module in model.modules():
            if hasattr(module, "lora_E") and "default" in getattr(module, "lora_E", {}):
                module.lora_E["default"].normal_()
    model.set_adapter(["default", "lora"])
    model.eval()
    ours = _logits(model, ids)
    model.save_pretrained(tmp_path)
    theirs = _logits(_hf_mixed_from_folders(copy.deepcopy(base), [("default", tmp_path), ("lora", tmp_path / "lora")]), ids)
    assert torch.equal(ours, theirs)


def test_a_lora_adapter_nested_in_a_mixed_model_can_be_hotswapped(tmp_path):
    from peft_core.hotswap import hotswap_adapter
    from peft_loha import LoHaConfig

    base = _tiny_llama()
    ids = _ids()
    paths = []
    for seed, (r, alpha) in enumerate([(4, 8), (2, 6)]):
        torch.manual_seed(20 + seed)
        single = get_peft_model(copy.deepcopy(base), LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj"], init_lora_weights=False))
        single.save_pretrained(tmp_path / f"lora{seed}")
        paths.append(tmp_path / f"lora{seed}")
    torch.manual_seed(30)
    loha = LoHaConfig(r=2, target_modules=["q_proj"], init_weights=False)
    swapped = PeftMixedModel.from_pretrained(copy.deepcopy(base), paths[0])
    swapped.add_adapter("loha", copy.deepcopy(loha))
    swapped.save_pretrained(tmp_path / "mixed", selected_adapters=["loha"])
    swapped.set_adapter(["default", "loha"])
    assert type(swapped.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__module__.startswith("peft_lora")
    hotswap_adapter(swapped, paths[1], adapter_name="default")  # the LoRA layer sits inside the LoHa one

    expected = _ours_from_folders(copy.deepcopy(base), [("default", paths[1]), ("loha", tmp_path / "mixed" / "loha")])
    torch.testing.assert_close(_logits(swapped.eval(), ids), _logits(expected, ids), atol=1e-5, rtol=1e-5)
