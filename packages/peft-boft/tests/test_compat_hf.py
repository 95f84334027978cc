"""File compatibility with Hugging Face PEFT 0.21.2's BOFT, in both directions.

HF builds more than one butterfly factor only with its CUDA extension; without it (as here) it silently
uses one factor. One-factor cases are compared with HF as is; for several factors HF's extension is
replaced by an equivalent PyTorch block-diagonal so that HF computes its full butterfly product on CPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _boft_test_models import config_json, conv_net, images, input_ids, load_in_hf, mlp, run, saved_tensors, tiny_llama

import peft_core
from peft_boft import BOFTConfig

peft = pytest.importorskip("peft")
boft_layer = pytest.importorskip("peft.tuners.boft.layer")
pytestmark = [pytest.mark.compat, pytest.mark.filterwarnings("ignore:Failed to load the CUDA extension"),
              pytest.mark.filterwarnings("ignore:Setting boft_n_butterfly_factor to 1")]


def randomize(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "boft_R" in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.1)
            elif "boft_s" in name:
                param.copy_(1 + torch.randn(param.shape, generator=g) * 0.1)


class _TorchBlockDiag:
    """Stands in for HF's `fbd_cuda` extension: (N, D, b, b) -> [(N, D*b, D*b)]."""

    @staticmethod
    def forward(blocks):
        return [torch.stack([torch.block_diag(*factor.unbind(0)) for factor in blocks])]


@pytest.fixture
def hf_butterfly(monkeypatch):
    monkeypatch.setattr(boft_layer, "get_fbd_cuda", lambda: _TorchBlockDiag)


def roundtrip(tmp_path, base, inputs, exact=True, **config):
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.BOFTConfig(**config)).eval()
    randomize(hf_model, seed=1)
    expected = run(hf_model, inputs)
    assert not torch.allclose(expected, run(base, inputs)), "trivial adapter: the test would prove nothing"
    hf_dir = tmp_path / "hf"
    hf_model.save_pretrained(hf_dir)
    ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), hf_dir)
    got = run(ours, inputs)
    if exact:
        assert torch.equal(got, expected), (got - expected).abs().max()
    else:
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)

    our_model = peft_core.get_peft_model(copy.deepcopy(base), BOFTConfig(**config)).eval()
    randomize(our_model, seed=2)
    ours_out = run(our_model, inputs)
    our_dir = tmp_path / "ours"
    our_model.save_pretrained(our_dir)
    theirs = run(load_in_hf(peft, copy.deepcopy(base), our_dir), inputs)
    if exact:
        assert torch.equal(theirs, ours_out), (theirs - ours_out).abs().max()
    else:
        torch.testing.assert_close(theirs, ours_out, atol=1e-6, rtol=1e-5)

    assert saved_tensors(our_dir) == saved_tensors(hf_dir)
    assert config_json(our_dir) == config_json(hf_dir)


LLAMA_CASES = {
    "block_size": {"boft_block_size": 4},
    "block_num": {"boft_block_size": 0, "boft_block_num": 4},
    "all_linear": {"boft_block_size": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"},
}


@pytest.mark.parametrize("case", sorted(LLAMA_CASES))
def test_tiny_llama(tmp_path, case):
    config = {"target_modules": ["q_proj", "v_proj", "down_proj"], **LLAMA_CASES[case]}
    roundtrip(tmp_path, tiny_llama(), input_ids(), **config)
    if case == "block_size":
        shapes = saved_tensors(tmp_path / "hf")
        prefix = "base_model.model.model.layers.0.self_attn.q_proj."
        assert shapes[prefix + "boft_R"] == ((1, 8, 4, 4), torch.float32)
        assert shapes[prefix + "boft_s"] == ((32, 1), torch.float32)


def test_default_targets(tmp_path):
    roundtrip(tmp_path, tiny_llama(), input_ids())
    assert config_json(tmp_path / "ours")["target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.parametrize("factors", [2, 3])
def test_several_butterfly_factors(tmp_path, hf_butterfly, factors):
    roundtrip(tmp_path, tiny_llama(), input_ids(), exact=False, target_modules=["q_proj", "v_proj"], boft_block_size=2,
              boft_n_butterfly_factor=factors)
    assert saved_tensors(tmp_path / "hf")["base_model.model.model.layers.0.self_attn.q_proj.boft_R"][0] == (factors, 16, 2, 2)


def test_conv2d(tmp_path):
    roundtrip(tmp_path, conv_net(), images(), target_modules=["conv", "head"], boft_block_size=4)
    shapes = saved_tensors(tmp_path / "hf")
    assert shapes["base_model.model.conv.boft_R"] == ((1, 9, 4, 4), torch.float32)
    assert shapes["base_model.model.conv.boft_s"] == ((1, 6), torch.float32)


def test_conv2d_several_factors(tmp_path, hf_butterfly):
    roundtrip(tmp_path, conv_net(), images(), exact=False, target_modules=["conv"], boft_block_size=2,
              boft_n_butterfly_factor=2)


def test_bias_and_modules_to_save(tmp_path):
    roundtrip(tmp_path, mlp(), torch.randn(4, 8), target_modules=["lin0", "lin1"], boft_block_size=4, bias="boft_only",
              modules_to_save=["head"])
    keys = set(saved_tensors(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.head.weight" in keys


def test_hf_file_without_cuda_extension_loads_with_one_factor(tmp_path):
    """HF on CPU trains one factor but saves boft_n_butterfly_factor=2: we follow the tensors, with a warning."""
    base = tiny_llama()
    ids = input_ids()
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.BOFTConfig(target_modules=["q_proj"], boft_block_size=4,
                                                                        boft_n_butterfly_factor=2)).eval()
    randomize(hf_model, seed=5)
    hf_model.save_pretrained(tmp_path)
    assert config_json(tmp_path)["boft_n_butterfly_factor"] == 2
    with pytest.warns(UserWarning, match="silently trains a single factor"):
        ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert torch.equal(run(ours, ids), run(hf_model, ids))


def test_merged_weights_match_hf(tmp_path):
    base = tiny_llama()
    hf_model = peft.get_peft_model(copy.deepcopy(base), peft.BOFTConfig(target_modules=["q_proj", "o_proj"]))
    randomize(hf_model, seed=4)
    hf_model.save_pretrained(tmp_path)
    hf_merged = hf_model.merge_and_unload()
    ours = peft_core.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).merge_and_unload()
    for (name, a), (_, b) in zip(hf_merged.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), name
