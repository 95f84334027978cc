"""`prepare_model_for_kbit_training` on a tiny transformers Llama (the bitsandbytes-quantized case,
compared with Hugging Face PEFT's function, is in peft-lora's tests/test_quantized_bnb.py)."""

from __future__ import annotations

import torch
from torch import nn

from core_test_models import make_tiny_llama
from peft_core import prepare_model_for_kbit_training
from peft_core.kbit import is_kbit_model, quantization_scheme


class ForeignTensor(torch.Tensor):
    pass


def _half_llama():
    model = make_tiny_llama().to(torch.bfloat16)
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.data.clone())  # untied: both get checked
    return model


def _gc_on(model) -> bool:
    return bool(model.model.gradient_checkpointing)


def test_plain_half_model_is_frozen_and_upcast_without_checkpointing():
    model = _half_llama()
    assert not is_kbit_model(model)
    assert prepare_model_for_kbit_training(model) is model
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    assert not _gc_on(model)  # not quantized: checkpointing is left alone, as in Hugging Face PEFT


def test_quantized_model_gets_checkpointing_and_input_grads():
    model = _half_llama()
    model.is_loaded_in_4bit = True
    prepare_model_for_kbit_training(model)
    assert _gc_on(model)
    assert getattr(model, "_require_grads_hook", None) is not None  # reentrant (default): embeddings' output needs grad
    ids = torch.randint(0, 128, (1, 5))
    assert model.get_input_embeddings()(ids).requires_grad

    off = _half_llama()
    off.is_loaded_in_4bit = True
    prepare_model_for_kbit_training(off, use_gradient_checkpointing=False)
    assert not _gc_on(off) and getattr(off, "_require_grads_hook", None) is None


def test_non_reentrant_checkpointing_passes_the_kwargs():
    model = _half_llama()
    model.is_loaded_in_8bit = True
    prepare_model_for_kbit_training(model, gradient_checkpointing_kwargs={"use_reentrant": False})
    assert _gc_on(model)
    func = model.model.layers[0]._gradient_checkpointing_func if hasattr(model.model.layers[0], "_gradient_checkpointing_func") else model.model._gradient_checkpointing_func
    assert func.keywords == {"use_reentrant": False}


def test_schemes_that_compute_in_the_model_dtype_are_not_upcast():
    model = _half_llama()
    model.quantization_method = "hqq"
    assert quantization_scheme(model) == "hqq" and is_kbit_model(model)
    prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in model.parameters())


def test_a_model_holding_quantized_modules_counts_as_kbit_and_its_packed_weights_stay():
    model = _half_llama()
    proj = model.model.layers[0].self_attn.q_proj
    proj.weight = nn.Parameter(proj.weight.data.as_subclass(ForeignTensor), requires_grad=False)
    assert is_kbit_model(model)
    prepare_model_for_kbit_training(model)
    assert type(proj.weight) is ForeignTensor and proj.weight.dtype == torch.bfloat16
    assert model.model.norm.weight.dtype == torch.float32
    assert _gc_on(model)
