"""Tiny Llama models quantized on CPU with the real libraries (bitsandbytes, torchao, hqq).

bitsandbytes models go through transformers (`from_pretrained(..., quantization_config=...)`, the way
users load them, which also sets `is_loaded_in_4bit` / `hf_quantizer`); torchao through `quantize_`;
HQQ by replacing the decoder's linear layers with `HQQLinear`. The hidden size is 64 because
bitsandbytes' CPU 4-bit kernels need at least one 64-value block per row.
"""

from __future__ import annotations

import functools
import tempfile
import warnings

import torch
from peft_core.testing import models
from torch import nn

VOCAB = 96
BACKENDS = ("nf4", "fp4-bf16", "int8", "torchao", "hqq")


def backend_params():
    """BACKENDS for pytest.mark.parametrize: NF4 (the QLoRA recipe) runs by default, the others under the
    `quantized` marker (`pytest -m quantized`, run by .ci/run) to keep the default suite quick."""
    import pytest

    return [b if b == "nf4" else pytest.param(b, marks=pytest.mark.quantized) for b in BACKENDS]


@functools.lru_cache(maxsize=None)
def _checkpoint(seed: int = 0) -> str:
    folder = tempfile.mkdtemp(prefix="tiny-llama-")
    models.make_llama(seed, vocab_size=VOCAB, hidden_size=64, intermediate_size=128).save_pretrained(folder)
    return folder


def float_llama(seed: int = 0) -> nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(_checkpoint(seed), device_map="cpu").eval()


def _bnb(config) -> nn.Module:
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(_checkpoint(), quantization_config=config, device_map="cpu")
    return model.eval()


def _decoder_linears(model: nn.Module):
    for name, module in list(model.named_modules()):
        if ".layers." in name and isinstance(module, nn.Linear):
            parent_name, _, child = name.rpartition(".")
            yield model.get_submodule(parent_name), child, module


def quantized_llama(backend: str) -> nn.Module:
    """A fresh tiny Llama whose decoder linears are quantized by `backend` (one of BACKENDS)."""
    if backend in ("nf4", "fp4-bf16"):
        from transformers import BitsAndBytesConfig

        nf4 = backend == "nf4"
        return _bnb(
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4" if nf4 else "fp4",
                bnb_4bit_use_double_quant=nf4,
                bnb_4bit_compute_dtype=torch.float32 if nf4 else torch.bfloat16,
            )
        )
    if backend == "int8":
        from transformers import BitsAndBytesConfig

        return _bnb(BitsAndBytesConfig(load_in_8bit=True))
    model = float_llama()
    if backend == "torchao":
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, name: isinstance(m, nn.Linear) and ".layers." in name)
        return model
    if backend == "hqq":
        from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

        settings = BaseQuantizeConfig(nbits=4, group_size=32)
        for parent, child, linear in _decoder_linears(model):
            setattr(parent, child, HQQLinear(linear, settings, compute_dtype=torch.float32, device="cpu"))
        return model
    raise ValueError(backend)


def layer_class_name(backend: str) -> str:
    return {"nf4": "Linear4bit", "fp4-bf16": "Linear4bit", "int8": "Linear8bitLt", "torchao": "TorchaoLinear", "hqq": "HqqLinear"}[backend]
