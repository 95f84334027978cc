"""File compatibility with Hugging Face PEFT 0.21.2's BOFT, in both directions.

The kit's `hf_files` check round-trips the one-factor cases of `peft_boft.conformance`. Here, with the
kit's `assert_both_ways`: default targets, `all-linear`, bias modes with modules_to_save, Conv2d, and
several butterfly factors. HF builds more than one factor only with its CUDA extension; without it (as
here) it silently uses one. For several factors HF's extension is replaced by an equivalent PyTorch
block-diagonal, so that HF computes its full butterfly product on CPU.
"""

from __future__ import annotations

import pytest
import torch
from peft_core.testing import models, output_of, perturb
from peft_core.testing.hf import assert_both_ways, assert_merges_like_hf, hf_peft_or_skip, read_adapter_config, saved_tensor_specs

import peft_core
from peft_boft import BOFTConfig

peft = hf_peft_or_skip()
boft_layer = pytest.importorskip("peft.tuners.boft.layer")
pytestmark = [pytest.mark.compat, pytest.mark.filterwarnings("ignore:Failed to load the CUDA extension"),
              pytest.mark.filterwarnings("ignore:Setting boft_n_butterfly_factor to 1")]


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5, msg=what)


def _both_ways(tmp_path, model, compare=None, **config):
    assert_both_ways(model, BOFTConfig(**config), peft.BOFTConfig(**config), tmp_path, compare=compare)


class _TorchBlockDiag:
    """Stands in for HF's `fbd_cuda` extension: (N, D, b, b) -> [(N, D*b, D*b)]."""

    @staticmethod
    def forward(blocks):
        return [torch.stack([torch.block_diag(*factor.unbind(0)) for factor in blocks])]


@pytest.fixture
def hf_butterfly(monkeypatch):
    monkeypatch.setattr(boft_layer, "get_fbd_cuda", lambda: _TorchBlockDiag)


def test_default_targets_and_all_linear(tmp_path):
    _both_ways(tmp_path / "default", models.LLAMA)
    assert read_adapter_config(tmp_path / "default" / "ours")["target_modules"] == {"q_proj", "v_proj"}
    _both_ways(tmp_path / "all", models.LLAMA, boft_block_size=8, target_modules="all-linear", task_type="CAUSAL_LM")
    shapes = saved_tensor_specs(tmp_path / "all" / "hf")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj."
    assert shapes[prefix + "boft_R"] == ((1, 4, 8, 8), torch.float32) and shapes[prefix + "boft_s"] == ((32, 1), torch.float32)


@pytest.mark.parametrize("factors", [2, 3])
def test_several_butterfly_factors(tmp_path, hf_butterfly, factors):
    _both_ways(tmp_path, models.LLAMA, compare=_close, target_modules=["q_proj", "v_proj"], boft_block_size=2,
               boft_n_butterfly_factor=factors)
    assert saved_tensor_specs(tmp_path / "hf")["base_model.model.model.layers.0.self_attn.q_proj.boft_R"][0] == (factors, 16, 2, 2)


def test_conv2d(tmp_path, hf_butterfly):
    _both_ways(tmp_path / "one", models.CONV, target_modules=["conv2d", "head"], boft_block_size=0, boft_block_num=1)
    assert saved_tensor_specs(tmp_path / "one" / "hf")["base_model.model.conv2d.boft_s"] == ((1, 8), torch.float32)
    _both_ways(tmp_path / "two", models.CONV, compare=_close, target_modules=["pointwise"], boft_block_size=2,
               boft_n_butterfly_factor=2)


def test_bias_and_modules_to_save(tmp_path):
    _both_ways(tmp_path, models.MLP, target_modules=["lin0", "lin1"], boft_block_size=4, bias="boft_only",
               modules_to_save=["lin2"])
    keys = set(saved_tensor_specs(tmp_path / "hf"))
    assert "base_model.model.lin0.base_layer.bias" in keys and "base_model.model.lin2.weight" in keys


def test_hf_file_without_cuda_extension_loads_with_one_factor(tmp_path):
    """HF on CPU trains one factor but saves boft_n_butterfly_factor=2: we follow the tensors, with a warning."""
    ids = models.LLAMA.make_inputs()["input_ids"]
    config = peft.BOFTConfig(target_modules=["q_proj"], boft_block_size=4, boft_n_butterfly_factor=2)
    hf_model = peft.get_peft_model(models.LLAMA.build(), config).eval()
    perturb(hf_model, 0.1, seed=5)
    hf_model.save_pretrained(tmp_path)
    assert read_adapter_config(tmp_path)["boft_n_butterfly_factor"] == 2
    with pytest.warns(UserWarning, match="silently trains a single factor"):
        ours = peft_core.PeftModel.from_pretrained(models.LLAMA.build(), tmp_path)
    with torch.no_grad():
        assert torch.equal(output_of(ours(ids)), output_of(hf_model(ids)))


def test_merged_weights_match_hf(tmp_path):
    hf_model = peft.get_peft_model(models.LLAMA.build(), peft.BOFTConfig(target_modules=["q_proj", "o_proj"]))
    perturb(hf_model, 0.1, seed=4)
    assert_merges_like_hf(models.LLAMA.build, hf_model, tmp_path)
