"""`prepare_model_for_kbit_training`: ready a quantized (k-bit) model for adapter training.

Same effect as Hugging Face PEFT's function of that name: freeze every base parameter; upcast the
fp16/bf16 parameters that are not quantized (norms, embeddings, head) to fp32 so that their
gradients and the loss are computed in full precision, except for quantization schemes whose layers
compute in the model's own dtype (GPTQ, AQLM, EETQ, HQQ, torchao), which would then be fed fp32;
and, for a quantized model, enable gradient checkpointing, with gradients on the input embeddings'
output when reentrant checkpointing is used (otherwise no gradient would flow into the checkpointed
blocks, whose weights are all frozen).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Mapping

import torch
from torch import nn

from .tuners.quantization import is_foreign_subclass, is_quantized
from .tuners.walk import modules as walk_modules

# Quantization schemes (transformers' `quant_method` values) that compute in the model's dtype.
KEEP_DTYPE_SCHEMES = frozenset({"gptq", "aqlm", "eetq", "hqq", "torchao"})
_UPCAST_DTYPES = (torch.float16, torch.bfloat16)


def quantization_scheme(model: nn.Module) -> str | None:
    """transformers' name for how `model` was quantized ("bitsandbytes", "gptq", "hqq", ...), or None."""
    method = getattr(model, "quantization_method", None)
    if method is None:
        quantizer = getattr(model, "hf_quantizer", None)
        method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if method is None and getattr(model, "hqq_quantized", False):
        method = "hqq"
    if method is None:
        return None
    return str(getattr(method, "value", method)).lower()


def is_kbit_model(model: nn.Module) -> bool:
    """Whether `model` was loaded quantized, by transformers' flags or because it holds quantized modules."""
    if getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False):
        return True
    if quantization_scheme(model) is not None:
        return True
    return any(is_quantized(m) for m in walk_modules(model))


def prepare_model_for_kbit_training(
    model: nn.Module,
    use_gradient_checkpointing: bool = True,
    gradient_checkpointing_kwargs: Mapping[str, Any] | None = None,
    auto_clear_cache: bool = True,
) -> nn.Module:
    """Prepare a quantized transformers model for training adapters on it; returns the same model.

    Args:
        model: a (usually quantized) transformers `PreTrainedModel`.
        use_gradient_checkpointing: enable gradient checkpointing (on quantized models).
        gradient_checkpointing_kwargs: passed to `torch.utils.checkpoint.checkpoint` through the
            model's gradient-checkpointing switch (e.g. `{"use_reentrant": False}`).
        auto_clear_cache: empty the accelerator's caching allocator after upcasting.
    """
    kwargs = dict(gradient_checkpointing_kwargs or {})
    scheme = quantization_scheme(model)
    quantized = is_kbit_model(model)

    for param in model.parameters():
        param.requires_grad_(False)

    if scheme not in KEEP_DTYPE_SCHEMES:
        for param in model.parameters():
            if param.dtype in _UPCAST_DTYPES and not is_foreign_subclass(param):
                param.data = param.data.to(torch.float32)
        if auto_clear_cache:
            _empty_accelerator_cache()

    if quantized and use_gradient_checkpointing:
        if kwargs.get("use_reentrant", True):
            _enable_input_grads(model)
        _enable_gradient_checkpointing(model, kwargs)
    return model


def _enable_input_grads(model: nn.Module) -> None:
    enable = getattr(model, "enable_input_require_grads", None)
    if callable(enable):
        enable()
        return

    def require_grad(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        output.requires_grad_(True)

    get_embeddings = getattr(model, "get_input_embeddings", None)
    if not callable(get_embeddings) or get_embeddings() is None:
        raise TypeError(
            f"prepare_model_for_kbit_training: {type(model).__name__} has neither enable_input_require_grads nor "
            f"get_input_embeddings, so its inputs can't be made to require gradients for reentrant checkpointing. "
            f"Pass gradient_checkpointing_kwargs={{'use_reentrant': False}} or use_gradient_checkpointing=False."
        )
    get_embeddings().register_forward_hook(require_grad)


def _enable_gradient_checkpointing(model: nn.Module, kwargs: dict[str, Any]) -> None:
    """The model's own switch: transformers >= 5 names it `activation_checkpointing_enable` (the old
    `gradient_checkpointing_enable` is a deprecated alias); older versions may not take kwargs."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if callable(enable) and "activation_checkpointing_kwargs" in inspect.signature(enable).parameters:
        enable(activation_checkpointing_kwargs=kwargs)
        return
    enable = getattr(model, "gradient_checkpointing_enable", None)
    if not callable(enable):
        raise TypeError(
            f"prepare_model_for_kbit_training: {type(model).__name__} has no gradient_checkpointing_enable; pass "
            f"use_gradient_checkpointing=False (or use a transformers model)."
        )
    if "gradient_checkpointing_kwargs" in inspect.signature(enable).parameters:
        enable(gradient_checkpointing_kwargs=kwargs)
        return
    if kwargs:
        warnings.warn(
            "gradient_checkpointing_kwargs is not supported by this model's gradient_checkpointing_enable and was "
            "ignored; upgrade transformers to pass them.",
            FutureWarning,
            stacklevel=3,
        )
    enable()


def _empty_accelerator_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        xpu.empty_cache()
