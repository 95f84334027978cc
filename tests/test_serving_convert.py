"""Converting adapters of other methods to LoRA (`peft_lora.convert_to_lora` / `save_as_lora`).

- Every method whose layers add a weight delta (LoHa, LoKr, VeRA, FourierFT, MiSS, LoRA) converts at a
  rank covering the delta to a LoRA adapter with the original's outputs; the saved folder loads in
  Hugging Face PEFT with logits identical to ours; on LoHa our tensors and config equal HF's own
  `convert_to_lora`'s.
- At a lower rank the reported relative error equals the one measured from the tensors; a float threshold
  gives each layer the smallest rank keeping that share of the energy.
- Methods that are not weight deltas (OFT, BOFT, HRA, IA3, DoRA), conv layers, bias modes and bad ranks
  are refused with `LoraConversionError`.
"""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("transformers")
hf = pytest.importorskip("peft")

from peft_core import PeftError, PeftModel, get_peft_model  # noqa: E402
from peft_lora import LoraConfig, LoraConversionError, convert_to_lora, save_as_lora  # noqa: E402

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


def _tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=128, n_positions=64)).eval()


def _ids():
    return torch.randint(0, 128, (2, 7), generator=torch.Generator().manual_seed(5))


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _config(method: str):
    targets = ["q_proj", "v_proj"]
    if method == "loha":
        from peft_loha import LoHaConfig

        return LoHaConfig(r=2, alpha=4, target_modules=targets, init_weights=False)
    if method == "lokr":
        from peft_lokr import LoKrConfig

        return LoKrConfig(r=2, alpha=4, target_modules=targets, init_weights=False)
    if method == "vera":
        from peft_vera import VeraConfig

        return VeraConfig(r=4, target_modules=targets, init_weights=False)
    if method == "fourierft":
        from peft_fourierft import FourierFTConfig

        return FourierFTConfig(n_frequency=12, target_modules=targets, scaling=10.0)
    if method == "miss":
        from peft_miss import MissConfig

        return MissConfig(r=4, target_modules=targets, init_weights=False)
    if method == "miss-bat":
        from peft_miss import MissConfig

        return MissConfig(r=4, target_modules=["q_proj", "o_proj"], init_weights="bat")  # ΔW depends on W: full rank
    if method == "lora":
        return LoraConfig(r=4, target_modules=targets, init_lora_weights=False)
    raise AssertionError(method)


def _adapted(method: str, base):
    torch.manual_seed(11)
    model = get_peft_model(copy.deepcopy(base), _config(method))
    if method == "miss-bat":  # 'bat' starts as a no-op: give its blocks values
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "miss_block" in name:
                    p.normal_(0, 0.05)
    return model.eval()


# v_proj is 32 -> 16: rank 16 holds any delta there exactly; MiSS 'bat' targets 32 x 32 layers (rank 32)
@pytest.mark.parametrize("method", ["loha", "lokr", "vera", "fourierft", "miss", "miss-bat", "lora"])
def test_full_rank_conversion_reproduces_the_adapter_and_loads_in_hf(tmp_path, method):
    base, ids = _tiny_llama(), _ids()
    model = _adapted(method, base)
    expected = _logits(model, ids)
    assert not torch.allclose(expected, _logits(base, ids))
    with pytest.warns(UserWarning, match="LoRA adapter to LoRA") if method == "lora" else _no_warning():
        report = save_as_lora(tmp_path, model, rank=32 if method == "miss-bat" else 16)
    assert report.max_relative_error < 1e-5
    ours = _logits(PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ids)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)
    theirs = _logits(hf.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ids)
    assert torch.equal(ours, theirs)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_loha_conversion_equals_hf_convert_to_lora(tmp_path):
    base = _tiny_llama()
    model = _adapted("loha", base)
    model.save_pretrained(tmp_path)
    hf_model = hf.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    for rank in (3, 0.8):
        ours_config, ours = convert_to_lora(model, rank)
        theirs_config, theirs = hf.convert_to_lora(hf_model, rank)
        assert set(ours) == set(theirs)
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], atol=1e-6, rtol=1e-5, msg=key)
        assert ours_config.r == theirs_config.r and ours_config.lora_alpha == theirs_config.lora_alpha
        assert ours_config.rank_pattern == theirs_config.rank_pattern
        assert set(ours_config.target_modules) == set(theirs_config.target_modules)


def test_report_gives_the_real_approximation_error_and_thresholds_pick_ranks():
    base = _tiny_llama()
    model = _adapted("lokr", base)
    result = convert_to_lora(model, 1)
    config, state = result
    assert config is result.config and state is result.state_dict
    for name, entry in result.report.modules.items():
        layer = model.get_submodule(f"base_model.model.{name}")
        with torch.no_grad():
            delta = layer.get_delta_weight("default")
        approx = state[f"base_model.model.{name}.lora_B.weight"] @ state[f"base_model.model.{name}.lora_A.weight"]
        measured = float(torch.linalg.norm(delta - approx) / torch.linalg.norm(delta))
        assert entry.rank == 1 and abs(entry.relative_error - measured) < 1e-4, name
    assert result.report.max_relative_error > 0.1
    assert "relative error" in str(result.report)

    threshold = 0.75
    thresholded = convert_to_lora(model, threshold)
    for name, entry in thresholded.report.modules.items():
        with torch.no_grad():
            s = torch.linalg.svdvals(model.get_submodule(f"base_model.model.{name}").get_delta_weight("default"))
        kept = (s[: entry.rank] ** 2).sum() / (s**2).sum()
        kept_one_less = (s[: entry.rank - 1] ** 2).sum() / (s**2).sum()
        assert kept >= threshold - 1e-6 > kept_one_less - 1e-6, name  # the smallest rank reaching the threshold
        assert thresholded.config.rank_pattern[name] == entry.rank == thresholded.config.alpha_pattern[name]


def test_gpt2_conv1d_layers_convert_in_lora_layout(tmp_path):
    from peft_vera import VeraConfig

    base, ids = _tiny_gpt2(), _ids()
    torch.manual_seed(3)
    model = get_peft_model(copy.deepcopy(base), VeraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True, init_weights=False)).eval()
    expected = _logits(model, ids)
    save_as_lora(tmp_path, model, rank=8)
    ours = _logits(PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ids)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(ours, _logits(hf.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path), ids))


def test_an_adapter_of_a_mixed_model_converts_with_single_method_keys(tmp_path):
    from peft_lokr import LoKrConfig

    base, ids = _tiny_llama(), _ids()
    torch.manual_seed(4)
    lokr = LoKrConfig(r=2, alpha=4, target_modules=["q_proj"], init_weights=False)
    mixed = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False), mixed=True)
    mixed.add_adapter("lokr", lokr)
    mixed.set_adapter("lokr")
    expected = _logits(mixed.eval(), ids)
    config, state = convert_to_lora(mixed, 16, adapter_name="lokr")
    assert all(".base_layer." not in key for key in state)
    model = get_peft_model(copy.deepcopy(base), config)
    from peft_core import set_peft_model_state_dict

    set_peft_model_state_dict(model, state)
    torch.testing.assert_close(_logits(model.eval(), ids), expected, atol=1e-4, rtol=1e-4)


def _refusing_configs():
    from peft_boft import BOFTConfig
    from peft_hra import HRAConfig
    from peft_ia3 import IA3Config
    from peft_oft import OFTConfig

    return {
        "oft": OFTConfig(r=0, oft_block_size=8, target_modules=["q_proj"]),
        "boft": BOFTConfig(boft_block_size=4, target_modules=["q_proj"]),
        "hra": HRAConfig(r=2, target_modules=["q_proj"]),
        "ia3": IA3Config(target_modules=["q_proj"], feedforward_modules=[]),
        "dora": LoraConfig(r=2, target_modules=["q_proj"], use_dora=True),
    }


@pytest.mark.parametrize("method", ["oft", "boft", "hra", "ia3", "dora"])
def test_adapters_that_are_not_weight_deltas_are_refused(method):
    model = get_peft_model(_tiny_llama(), _refusing_configs()[method])
    with pytest.raises(LoraConversionError, match="added matrix") as info:
        convert_to_lora(model, 4)
    assert isinstance(info.value, PeftError) and isinstance(info.value, TypeError)


def test_conv_layers_bias_modes_and_bad_ranks_are_refused(tmp_path):
    from peft_loha import LoHaConfig

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)

    conv = get_peft_model(Net(), LoHaConfig(target_modules=["conv"]))
    with pytest.raises(LoraConversionError, match="Only adapters on Linear"):
        convert_to_lora(conv, 2)
    model = get_peft_model(_tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], bias="all"))
    with pytest.raises(LoraConversionError, match="bias"):
        convert_to_lora(model, 2)
    model = _adapted("loha", _tiny_llama())
    for rank in (0, -1, 1.5, 0.0, True, "4"):
        with pytest.raises(LoraConversionError, match="rank"):
            convert_to_lora(model, rank)
    with pytest.raises(LoraConversionError, match="larger than"):
        convert_to_lora(model, 17)
    with pytest.raises(LoraConversionError, match="no adapter layers"):
        convert_to_lora(model, 2, adapter_name="missing")
    assert not list(tmp_path.iterdir())
