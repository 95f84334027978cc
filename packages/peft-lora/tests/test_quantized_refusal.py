"""The silent-wrap case: a quantized module that no LoRA dispatcher handles is refused by type, never
wrapped as a plain `Linear` (bitsandbytes' `Linear4bit` subclasses `nn.Linear`: the forward pass used
to work, then backward raised and merging failed). Also: the quantization libraries stay unimported
for plain models."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from _quantized_models import quantized_llama
from peft_core import UnsupportedLayerError, get_peft_model, layer_dispatchers, register_layer_dispatcher
from peft_core import unregister_layer_dispatcher
from peft_lora import LoraConfig
from peft_lora.quantized import dispatch_quantized_layer
from torch import nn


@pytest.fixture
def without_quantized_dispatcher():
    entry = next(d for d in layer_dispatchers("lora") if d.name == "quantized")
    unregister_layer_dispatcher("lora", "quantized")
    try:
        yield
    finally:
        register_layer_dispatcher("lora", "quantized", dispatch_quantized_layer, quantized=True, priority=entry.priority)


def test_bnb_4bit_without_its_dispatcher_is_refused_not_wrapped(without_quantized_dispatcher):
    model = quantized_llama("nf4")
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, nn.Linear)  # the case that used to be wrapped as a plain LoRA Linear
    with pytest.raises(UnsupportedLayerError) as err:
        get_peft_model(model, LoraConfig(target_modules=["q_proj", "v_proj"]))
    message = str(err.value)
    assert "bitsandbytes.nn.modules.Linear4bit" in message and "'model.layers.0.self_attn.q_proj'" in message
    assert "Params4bit" in message and "method 'lora'" in message
    assert model.model.layers[0].self_attn.q_proj is q_proj  # nothing was replaced


@pytest.mark.parametrize("weight_dtype", [torch.float8_e4m3fn, torch.int8])
def test_a_quantized_linear_of_an_unknown_kind_is_refused(weight_dtype):
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 8)
            self.proj.weight = nn.Parameter(self.proj.weight.data.to(weight_dtype), requires_grad=False)
            self.head = nn.Linear(8, 2)

    with pytest.raises(UnsupportedLayerError, match=rf"'proj' is a quantized torch.nn.modules.linear.Linear .*{weight_dtype}"):
        get_peft_model(Model(), LoraConfig(target_modules=["proj", "head"]))
    assert isinstance(get_peft_model(Model(), LoraConfig(target_modules=["head"])).base_model.model.proj, nn.Linear)


def test_quantization_libraries_are_imported_only_for_quantized_models():
    code = textwrap.dedent(
        """
        import sys, torch
        from peft_core import get_peft_model
        from peft_lora import LoraConfig
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        get_peft_model(model, LoraConfig(target_modules=["0", "2"]))
        print(sorted(m for m in ("bitsandbytes", "torchao", "hqq", "transformers") if m in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
