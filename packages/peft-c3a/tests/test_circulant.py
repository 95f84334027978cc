"""C3A's own behaviour: the block-circulant structure, block_size rules, inits, several adapters."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from peft_c3a import C3AConfig, C3ALinear, block_circulant_matrix, block_circulant_product
from peft_c3a.model import block_size_for
from peft_core import ConfigError, get_peft_model


def _circulant_by_definition(kernel: torch.Tensor) -> torch.Tensor:
    """Block (j, i) holds `M[k, m] = w_ji[(m - k) mod b]` (a circular cross-correlation)."""
    m, n, b = kernel.shape
    out = torch.zeros(m * b, n * b, dtype=kernel.dtype)
    for j in range(m):
        for i in range(n):
            for k in range(b):
                for col in range(b):
                    out[j * b + k, i * b + col] = kernel[j, i, (col - k) % b]
    return out


@pytest.mark.parametrize("shape", [(1, 1, 4), (2, 3, 4), (3, 2, 5)])
def test_matrix_is_block_circulant(shape):
    kernel = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    dense = block_circulant_matrix(kernel)
    torch.testing.assert_close(dense, _circulant_by_definition(kernel), atol=1e-5, rtol=1e-5)
    x = torch.randn(7, shape[1] * shape[2])
    torch.testing.assert_close(block_circulant_product(x, kernel), x @ dense.T, atol=1e-5, rtol=1e-5)


def test_layer_update_is_circulant_over_in_features():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(8, 12))
    model = get_peft_model(copy.deepcopy(base), C3AConfig(block_size=4, target_modules=["0"], init_weights="gaussian"))
    layer = model.base_model.model[0]
    assert isinstance(layer, C3ALinear) and layer.c3a_kernel["default"].shape == (3, 2, 4)
    x = torch.randn(5, 8)
    dense = _circulant_by_definition(layer.c3a_kernel["default"].detach()) / 8
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x) + x @ dense.T, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer.get_delta_weight("default"), dense, atol=1e-6, rtol=1e-5)


def test_block_size_must_divide_in_and_out():
    with pytest.raises(ConfigError, match="'0'.*block_size=3 must divide both the input \\(8\\) and output \\(12\\)"):
        get_peft_model(nn.Sequential(nn.Linear(8, 12)), C3AConfig(block_size=3, target_modules=["0"]))
    with pytest.raises(ConfigError, match="positive"):
        C3AConfig(block_size=0)
    with pytest.raises(ConfigError, match="positive"):
        C3AConfig(block_size_pattern={"q": -2})
    with pytest.raises(ConfigError, match="init_weights"):
        C3AConfig(init_weights="orthogonal")


def test_block_size_pattern_uses_hf_older_rule():
    config = C3AConfig(block_size=8, block_size_pattern={"v_proj": 4, "model.layers.0.q_proj": 2})
    assert block_size_for(config, "model.layers.1.v_proj") == 4
    assert block_size_for(config, "model.layers.0.q_proj") == 2  # exact full name
    assert block_size_for(config, "model.layers.1.q_proj") == 8
    assert block_size_for(config, "v_proj") == 4  # exact name without a dot also counts (HF's fallback)


@pytest.mark.parametrize(
    "init,bound",
    [("xavier_uniform", math.sqrt(3) * math.sqrt(2 / 20)), (False, math.sqrt(3) * math.sqrt(2 / 20)), ("kaiming_uniform", math.sqrt(1 / 8))],
)
def test_uniform_inits_respect_their_bounds(init, bound):
    model = get_peft_model(nn.Sequential(nn.Linear(8, 12)), C3AConfig(block_size=4, target_modules=["0"], init_weights=init))
    kernel = model.base_model.model[0].c3a_kernel["default"]
    assert kernel.abs().max() <= bound and kernel.abs().max() > bound / 2
    assert kernel.dtype == torch.float32


def test_zero_init_is_a_no_op_and_kernels_stay_fp32_on_bf16_base():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(8, 8)).to(torch.bfloat16)
    model = get_peft_model(copy.deepcopy(base), C3AConfig(block_size=4, target_modules=["0"], init_weights=True))
    assert model.base_model.model[0].c3a_kernel["default"].dtype == torch.float32
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(model(x), base(x))


def test_several_active_adapters_each_see_the_input_and_add_up():
    torch.manual_seed(3)
    base = nn.Sequential(nn.Linear(8, 8))
    model = get_peft_model(copy.deepcopy(base), C3AConfig(block_size=4, target_modules=["0"], init_weights="gaussian"))
    model.add_adapter("other", C3AConfig(block_size=2, target_modules=["0"], init_weights="gaussian"))
    model.base_model.set_adapter(["default", "other"])
    layer = model.base_model.model[0]
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = base(x) + x @ (layer.get_delta_weight("default") + layer.get_delta_weight("other")).T
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
        model.merge_adapter()  # merging both gives the same function
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
