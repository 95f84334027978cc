"""AdaLoRA layers and model features, checked against independent computations. The conformance kit
(test_conformance.py) checks the rest: merging, disabling, several adapters, mixed batches, save/load."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from _adalora_helpers import conv_net, images, mlp, randomize_adalora, tiny_gpt2
from torch import nn

import peft_core
from peft_adalora import AdaLoraConfig, AdaLoraModel, RankAllocator, SVDConv2d, SVDLinear


def _config(**kwargs) -> AdaLoraConfig:
    kwargs.setdefault("total_step", 10)
    kwargs.setdefault("target_modules", ["lin0", "lin1"])
    return AdaLoraConfig(**kwargs)


def _model(base=None, seed: int = 123, **kwargs):
    model = peft_core.get_peft_model(base if base is not None else mlp(), _config(**kwargs))
    randomize_adalora(model, seed=seed)
    return model.eval()


def _delta(layer, name: str = "default") -> torch.Tensor:
    """ΔW = B diag(E) A · alpha / init_r, computed here from the parameters (float64)."""
    a = layer.lora_A[name].double()
    b = layer.lora_B[name].double()
    e = layer.lora_E[name].double().view(-1)
    return b @ torch.diag(e) @ a * layer.scaling[name] / float(layer.ranknum[name])


def test_linear_forward_and_delta_weight_follow_the_formula():
    model = _model(init_r=4, lora_alpha=6)
    x = torch.randn(3, 16)
    inner = model.base_model.model
    lin0, lin1 = inner.lin0, inner.lin1
    assert isinstance(lin0, SVDLinear)
    assert lin0.lora_A["default"].shape == (4, 16) and lin0.lora_E["default"].shape == (4, 1)
    assert lin0.lora_B["default"].shape == (32, 4)
    assert float(lin0.ranknum["default"]) == 4.0 and lin0.scaling["default"] == 6
    w0 = lin0.get_base_layer().weight.double() + _delta(lin0)
    w1 = lin1.get_base_layer().weight.double() + _delta(lin1)
    norm, lin2 = copy.deepcopy(inner.norm).double(), copy.deepcopy(inner.lin2).double()
    h = norm(torch.relu(F.linear(x.double(), w0, lin0.bias.double())))
    expected = lin2(torch.relu(F.linear(h, w1, lin1.bias.double())))
    with torch.no_grad():
        torch.testing.assert_close(model(x).double(), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lin0.get_delta_weight("default").double(), _delta(lin0), atol=1e-6, rtol=1e-5)


def test_non_positive_alpha_scales_by_init_r():
    model = _model(init_r=3, lora_alpha=0)
    assert model.base_model.model.lin0.scaling["default"] == 3.0


def test_default_init_is_a_no_op():
    base = mlp()
    x = torch.randn(2, 16)
    model = peft_core.get_peft_model(copy.deepcopy(base), _config(init_r=5))
    layer = model.base_model.model.lin0
    assert torch.all(layer.lora_E["default"] == 0)
    assert 0.01 < float(layer.lora_A["default"].detach().std()) < 0.03
    with torch.no_grad():
        assert torch.equal(model(x), base(x))
    random = peft_core.get_peft_model(copy.deepcopy(base), _config(init_r=5, init_lora_weights=False))
    assert float(random.base_model.model.lin0.lora_E["default"].detach().abs().sum()) > 0


def test_gpt2_conv1d_flips_fan_in_fan_out_and_merges_transposed():
    base = tiny_gpt2()
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        model = peft_core.get_peft_model(copy.deepcopy(base), AdaLoraConfig(total_step=10, init_r=3, target_modules=["c_attn"]))
    assert model.peft_config["default"].fan_in_fan_out is True
    randomize_adalora(model)
    layer = model.base_model.model.transformer.h[0].attn.c_attn
    assert layer.lora_A["default"].shape == (3, 32) and layer.lora_B["default"].shape == (96, 3)
    torch.testing.assert_close(layer.get_delta_weight("default").double(), _delta(layer).T, atol=1e-6, rtol=1e-5)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        expected = x.double() @ (layer.get_base_layer().weight.double() + _delta(layer).T) + layer.bias.double()
        torch.testing.assert_close(layer(x).double(), expected, atol=1e-5, rtol=1e-5)


def test_conv2d_forward_is_the_conv_with_the_delta_kernel():
    model = _model(conv_net(), target_modules=["conv2d", "pointwise"], init_r=4)
    conv = model.base_model.model.conv2d
    assert isinstance(conv, SVDConv2d)
    assert conv.lora_A["default"].shape == (4, 3 * 3 * 3) and conv.lora_B["default"].shape == (8, 4)
    x = images()
    base = conv.get_base_layer()
    kernel = (base.weight.double() + _delta(conv).reshape(base.weight.shape))
    expected = F.conv2d(x.double(), kernel, base.bias.double(), padding=1)
    with torch.no_grad():
        torch.testing.assert_close(conv(x).double(), expected, atol=1e-5, rtol=1e-5)


def test_unsupported_layers_are_refused():
    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, groups=2)
            self.emb = nn.Embedding(10, 4)
            self.conv1d = nn.Conv1d(4, 4, 3)

    with pytest.raises(ValueError, match="grouped"):
        peft_core.get_peft_model(Grouped(), _config(target_modules=["conv"]))
    for name in ("emb", "conv1d"):
        with pytest.raises(ValueError, match="not supported by AdaLoRA"):
            peft_core.get_peft_model(Grouped(), _config(target_modules=[name]))


def test_only_one_trainable_adapter():
    model = _model()
    with pytest.raises(ValueError, match="only 1 trainable adapter"):
        model.add_adapter("other", _config())
    assert "other" not in model.peft_config
    assert not any(".other" in k for k in model.state_dict())
    model.add_adapter("other", _config(inference_mode=True, init_r=2, lora_alpha=4))
    assert model.base_model.trainable_adapter_name == "default"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".default" in n for n in trainable)
    model.delete_adapter("default")
    assert model.base_model.trainable_adapter_name is None
    with pytest.raises(ValueError, match="inference mode"):
        model.base_model.update_and_allocate(0)


@dataclass
class _Output:
    loss: torch.Tensor
    logits: torch.Tensor


class _WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x, labels=None):
        out = self.net(x)
        return _Output(loss=((out - labels) ** 2).mean() if labels is not None else None, logits=out)


def test_orthogonal_regulariser_is_added_to_the_loss():
    model = peft_core.get_peft_model(_WithLoss(), _config(orth_reg_weight=0.3, target_modules=["lin0", "lin1"]))
    randomize_adalora(model)
    x, y = torch.randn(3, 16), torch.randn(3, 16)
    norms = []
    for layer in (model.base_model.model.net.lin0, model.base_model.model.net.lin1):
        a, b = layer.lora_A["default"].detach(), layer.lora_B["default"].detach()
        norms.append(torch.linalg.matrix_norm(a @ a.T - torch.eye(a.shape[0])))
        norms.append(torch.linalg.matrix_norm(b.T @ b - torch.eye(b.shape[1])))
    with torch.no_grad():
        plain = ((model.base_model.model.net(x) - y) ** 2).mean()
        out = model(x, labels=y)
    torch.testing.assert_close(out.loss, plain + 0.3 * torch.stack(norms).mean(), atol=1e-5, rtol=1e-5)
    assert model(x).loss is None  # no labels, nothing added
    loss = model(x, labels=y).loss
    loss.backward()
    assert model.base_model.model.net.lin0.lora_A["default"].grad is not None


def test_update_and_allocate_needs_gradients():
    model = _model()
    with pytest.raises(ValueError, match="no gradient"):
        model.base_model.update_and_allocate(3)


def test_budget_schedule_is_cubic_between_tinit_and_total_minus_tfinal():
    model = _model(init_r=6, target_r=2, tinit=3, tfinal=4, deltaT=2, total_step=20)
    alloc = model.base_model.rankallocator
    assert isinstance(alloc, RankAllocator)
    assert (alloc.init_bgt, alloc.target_bgt) == (12, 4)
    for step in range(25):
        budget, mask = alloc.budget_schedule(step)
        if step <= 3:
            assert (budget, mask) == (12, False)
        elif step > 16:
            assert (budget, mask) == (4, True)
        else:
            frac = 1 - (step - 3) / 13
            assert budget == int(8 * frac**3 + 4) and mask == (step % 2 == 0)


def test_lora_only_features_are_refused():
    model = _model()
    with pytest.raises(TypeError, match="add_weighted_adapter"):
        model.base_model.add_weighted_adapter(["default"], [1.0], "merged")
    with pytest.raises(ValueError, match="ParameterDict"):
        model.add_adapter("copy", _config(inference_mode=True))


def test_is_a_lora_model():
    from peft_lora import LoraLayer, LoraModel

    model = _model()
    assert isinstance(model.base_model, AdaLoraModel) and isinstance(model.base_model, LoraModel)
    assert isinstance(model.base_model.model.lin0, LoraLayer)


def _train(model, steps, start=0):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for step in range(start, start + steps):
        model(torch.randn(4, 16)).pow(2).mean().backward()
        optimizer.step()
        model.base_model.update_and_allocate(step)
        optimizer.zero_grad()


def test_a_budget_that_needs_no_pruning_prunes_nothing():
    # HF fails here (torch.kthvalue with k = 0); nothing needs pruning, so nothing is pruned
    model = peft_core.get_peft_model(mlp(), _config(init_r=2, target_r=2, tinit=1, tfinal=2, total_step=6))
    _train(model, 6)
    assert model.peft_config["default"].rank_pattern is None
    assert all(float(layer.lora_E["default"].detach().abs().min()) > 0 for layer in (model.base_model.model.lin0,))


def test_skipping_the_final_allocation_is_reported():
    model = peft_core.get_peft_model(mlp(), _config(init_r=4, target_r=1, tinit=1, tfinal=2, total_step=6))
    _train(model, 2)  # steps 0-1: warm-up only, no rank_pattern yet
    with pytest.raises(ValueError, match="including step 4"):
        _train(model, 1, start=5)
