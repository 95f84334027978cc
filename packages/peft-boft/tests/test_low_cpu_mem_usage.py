"""BOFT adapters load with `low_cpu_mem_usage=True`, where layers are built on the meta device."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from peft_boft import BOFTConfig
from peft_core import PeftModel, get_peft_model


class TwoLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin0 = nn.Linear(16, 16)
        self.lin1 = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(self.lin0(x))


@pytest.mark.parametrize(
    "sizes",
    [
        {"boft_block_size": 0, "boft_block_num": 4, "boft_n_butterfly_factor": 2},  # used Tensor.item() on meta
        {"boft_block_size": 4, "boft_n_butterfly_factor": 2},
    ],
)
def test_low_cpu_mem_usage_load_equals_the_normal_load(tmp_path, sizes):
    torch.manual_seed(0)
    base = TwoLinear()
    model = get_peft_model(copy.deepcopy(base), BOFTConfig(target_modules=["lin0", "lin1"], init_weights=False, **sizes))
    model.save_pretrained(tmp_path)
    x = torch.randn(3, 16)
    with torch.no_grad():
        expected = model.eval()(x)
        normal = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)(x)
        low = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path, low_cpu_mem_usage=True)(x)
    assert torch.equal(normal, expected)
    assert torch.equal(low, expected)
