"""Hotswapping LoRA adapters on a `torch.compile`d model (inductor backend, CPU) without recompiling.

One small model is compiled once; adapters of other ranks and alphas are swapped in and give their
own outputs while torch's compile counter stays at one graph. A control shows the counter does see
recompilations: without `prepare_model_for_compiled_hotswap`, a new alpha recompiles.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _lora_test_models import randomize_lora
from peft_core import PeftModel, get_peft_model
from peft_core.hotswap import hotswap_adapter, prepare_model_for_compiled_hotswap
from torch import nn

from peft_lora import LoraConfig

dynamo_testing = pytest.importorskip("torch._dynamo.testing")


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


# (rank, alpha): scalings 2 and 4 (powers of two: LoRA's fused path in eager mode), 0.5 and 2/3
ADAPTERS = [(2, 4), (6, 3), (4, 16), (3, 2)]


@pytest.fixture(scope="module")
def saved_adapters(tmp_path_factory):
    torch.manual_seed(0)
    base = SmallNet().eval()
    root = tmp_path_factory.mktemp("adapters")
    paths = []
    for i, (r, alpha) in enumerate(ADAPTERS):
        model = get_peft_model(copy.deepcopy(base), LoraConfig(r=r, lora_alpha=alpha, target_modules=["up", "down"]))
        randomize_lora(model, seed=100 + i, std=0.3)
        model.save_pretrained(root / f"a{i}")
        paths.append(root / f"a{i}")
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = [PeftModel.from_pretrained(copy.deepcopy(base), p)(x) for p in paths]
    return base, paths, x, expected


def test_compiled_model_swaps_other_ranks_and_alphas_without_recompiling(saved_adapters):
    base, paths, x, expected = saved_adapters
    model = PeftModel.from_pretrained(copy.deepcopy(base), paths[0])
    prepare_model_for_compiled_hotswap(model, target_rank=max(r for r, _ in ADAPTERS))
    torch._dynamo.reset()
    counter = dynamo_testing.CompileCounterWithBackend("inductor")
    compiled = torch.compile(model, backend=counter)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected[0], atol=1e-5, rtol=1e-5)
    assert counter.frame_count == 1
    for i in [1, 2, 3, 0, 2]:
        hotswap_adapter(compiled, paths[i], adapter_name="default")
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), expected[i], atol=1e-5, rtol=1e-5, msg=f"adapter {i}")
    assert counter.frame_count == 1, f"recompiled: {counter.frame_count} graphs"


def test_control_without_preparation_a_new_alpha_recompiles(saved_adapters):
    base, paths, x, expected = saved_adapters
    model = PeftModel.from_pretrained(copy.deepcopy(base), paths[1])
    torch._dynamo.reset()
    counter = dynamo_testing.CompileCounter()  # eager backend: this only shows that recompiles are counted
    compiled = torch.compile(model, backend=counter)
    with torch.no_grad():
        compiled(x)
        assert counter.frame_count == 1
        hotswap_adapter(compiled, paths[3], adapter_name="default")  # rank 3 fits in 6; scaling 2/3 instead of 1/2
        torch.testing.assert_close(compiled(x), expected[3], atol=1e-5, rtol=1e-5)
    assert counter.frame_count == 2
