"""The fused training update (layers/fused.py) against the composed modules: same outputs and gradients
within fp32 tolerance, with and without dropout, for 2-D and 3-D inputs, half-precision inputs into an
fp32 adapter, and frozen inputs; evaluation keeps the composed path."""

from __future__ import annotations

import copy

import pytest
import torch
from peft_core import get_peft_model
from peft_lora import LoraConfig
from peft_lora.layers import fused
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(16, 24)
        self.v = nn.Linear(16, 24)
        self.out = nn.Linear(24, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.q(x)) * self.v(x))


def _model(dropout: float, alpha: int = 12) -> nn.Module:
    torch.manual_seed(0)
    config = LoraConfig(target_modules=["q", "v"], r=4, lora_alpha=alpha, lora_dropout=dropout, init_lora_weights=False)
    return get_peft_model(Block(), config)


def _composed(model: nn.Module) -> nn.Module:
    """The same model with the fused hook switched off (the composed modules run)."""
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if hasattr(module, "_train_update"):
            module._train_update = lambda *args, **kwargs: None
    return plain


def _step(model: nn.Module, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
    model.train()
    x = x.clone().requires_grad_(x.is_floating_point())
    torch.manual_seed(seed)
    out = model(x)
    out.float().pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads, x.grad


def _same_masks(monkeypatch: pytest.MonkeyPatch, masks: list[torch.Tensor]) -> None:
    """Record the fused path's masks; the composed path's nn.Dropout is replaced by the same masks."""
    draw = fused.dropout_mask

    def recording(x: torch.Tensor, p: float) -> torch.Tensor:
        mask = draw(x, p)
        masks.append(mask)
        return mask

    monkeypatch.setattr(fused, "dropout_mask", recording)


class _Replay(nn.Module):
    def __init__(self, masks: list[torch.Tensor], p: float) -> None:
        super().__init__()
        self.masks, self.p = masks, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.masks.pop(0) / (1 - self.p)


@pytest.mark.parametrize("shape", [(6, 16), (2, 5, 16)])
@pytest.mark.parametrize("alpha", [4, 8, 12])  # scaling 1, a power of two, and neither
def test_no_dropout_matches_the_composed_modules(shape, alpha):
    model = _model(0.0, alpha)
    x = torch.randn(*shape)
    out, grads, gx = _step(model, x, 0)
    ref_out, ref_grads, ref_gx = _step(_composed(model), x, 0)
    torch.testing.assert_close(out, ref_out)
    assert grads.keys() == ref_grads.keys() and any("lora_A" in n for n in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], msg=name)
    torch.testing.assert_close(gx, ref_gx)


def test_dropout_matches_the_composed_modules_with_the_same_masks(monkeypatch):
    p = 0.3
    model = _model(p)
    masks: list[torch.Tensor] = []
    _same_masks(monkeypatch, masks)
    x = torch.randn(3, 7, 16)
    out, grads, gx = _step(model, x, 1)
    assert len(masks) == 2 and all(m.dtype == torch.bool for m in masks)
    assert 0.5 < float(torch.cat([m.flatten() for m in masks]).float().mean()) < 0.9  # p = 0.3 dropped
    composed = _composed(model)
    for module in composed.modules():
        if hasattr(module, "lora_dropout"):
            module.lora_dropout["default"] = _Replay(masks, p)
    ref_out, ref_grads, ref_gx = _step(composed, x, 1)
    torch.testing.assert_close(out, ref_out)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], msg=name)
    torch.testing.assert_close(gx, ref_gx)


def test_a_half_precision_input_into_an_fp32_adapter_keeps_its_dtype_and_gradient():
    layer = nn.Linear(16, 24).to(torch.bfloat16)
    lora_a, lora_b = nn.Linear(16, 4, bias=False), nn.Linear(4, 24, bias=False)
    nn.init.normal_(lora_b.weight)
    x = torch.randn(5, 16, dtype=torch.bfloat16, requires_grad=True)
    result = layer(x).float()
    out = fused.fused_update(result, x, lora_a, lora_b, 2.0, nn.Identity())
    assert out is not None
    out.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    expected = lora_b(lora_a(x.detach().float())) * 2.0 + result.detach()
    torch.testing.assert_close(out.detach(), expected)


def test_frozen_input_gets_no_gradient_and_the_adapter_does():
    model = _model(0.1)
    for p in model.base_model.model.q.base_layer.parameters():
        assert not p.requires_grad
    out, grads, _ = _step(model, torch.randn(4, 16), 2)
    assert {n for n in grads if "lora_" in n} == {
        n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n
    }


def test_eval_and_no_grad_keep_the_composed_path(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(fused._LoraUpdate, "apply", lambda *a: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    model = _model(0.1)
    model.eval()
    model(torch.randn(3, 16, requires_grad=True)).sum().backward()  # eval: composed, HF bits
    model.train()
    with torch.no_grad():
        model(torch.randn(3, 16))
    assert calls == []


def test_unsupported_settings_fall_back():
    a, b = nn.Linear(16, 4, bias=False), nn.Linear(4, 24, bias=True)
    x, result = torch.randn(3, 16), torch.randn(3, 24)
    assert fused.fused_update(result, x, a, b, 1.0, nn.Identity()) is None  # lora_bias
    b = nn.Linear(4, 24, bias=False)
    assert fused.fused_update(result, x, a, b, torch.tensor(1.0), nn.Identity()) is None  # hotswap scaling
    assert fused.fused_update(result.half(), x, a, b, 1.0, nn.Identity()) is None  # other output dtype
    assert fused.fused_update(result, x, a, b, 1.0, nn.Dropout(1.0)) is None  # all dropped
    assert fused.fused_update(result, x, a, b, 1.0, nn.AlphaDropout(0.1)) is None  # other dropout
