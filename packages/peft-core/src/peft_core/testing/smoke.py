"""The quick smoke test (the conformance kit's predecessor, kept for callers that only name a method).

`smoke_test(name)` applies the method to a tiny model, runs a forward pass, saves the adapter,
loads it into a fresh copy of the base model and checks that the outputs are identical.
The config is built generically: `config_cls(target_modules=[...])`, with every boolean `init*`
field that defaults to True (the "start as a no-op" switches) turned off, so the check is not trivial.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..config import PeftConfig
from ..registry import get_peft_method


class TinyMLP(nn.Module):
    """Two linear layers and a norm; small enough for a smoke test anywhere."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.lin0 = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.lin1 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(torch.relu(self.norm(self.lin0(x))))


def example_config(name: str, target_modules: Sequence[str], **overrides: Any) -> PeftConfig:
    """A config for method `name` targeting `target_modules`, with non-trivial initial weights."""
    config_cls = get_peft_method(name).config_cls
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs: dict[str, Any] = {}
    if "target_modules" in fields:
        kwargs["target_modules"] = list(target_modules)
    for name, f in fields.items():
        if name.startswith("init") and f.default is True:
            kwargs[name] = False
    kwargs.update(overrides)
    return config_cls(**kwargs)


def smoke_test(
    name: str,
    target_modules: Sequence[str] = ("lin0", "lin1"),
    model_factory: Callable[[], nn.Module] = TinyMLP,
    inputs_factory: Callable[[], torch.Tensor] = lambda: torch.randn(3, 16),
    **overrides: Any,
) -> None:
    """Raise AssertionError unless method `name` trains, saves and reloads with identical outputs.

    Methods that need another kind of model (prompt learning needs embeddings and a model config)
    pass `model_factory` and `inputs_factory`; the model's output must be a tensor or have `.logits`.
    """
    from ..mapping import get_peft_model
    from ..peft_model import PeftModel

    torch.manual_seed(0)
    base = model_factory()
    pristine = copy.deepcopy(base)
    x = inputs_factory()
    model = get_peft_model(base, example_config(name, target_modules, **overrides))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable, f"{name}: no trainable parameters after get_peft_model"
    model.train()
    opt = torch.optim.SGD(trainable, lr=0.05)
    loss = _output(model(x)).float().pow(2).mean()
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        expected = _output(model(x))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(copy.deepcopy(pristine), tmp)
        with torch.no_grad():
            got = _output(loaded(x))
    assert torch.equal(got, expected), f"{name}: outputs differ after save/load (max diff {(got - expected).abs().max()})"


def _output(out: Any) -> torch.Tensor:
    return out if torch.is_tensor(out) else out.logits
