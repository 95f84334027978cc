"""Recognising quantized modules without importing any quantization library.

A quantized linear layer often subclasses `nn.Linear` (bitsandbytes' `Linear4bit`) or looks like one
from the outside, so an adapter method that picks its layer by `isinstance` would wrap it as a plain
layer: the forward pass runs, then backward or merging fails on the packed weight. The layer-dispatch
registry (`tuners.dispatch`) asks this module first and offers a quantized module only to dispatchers
that declared they handle quantized bases.

A module counts as quantized when any of these holds (checked on the module itself, not its children):
- one of its parameters is a tensor subclass defined outside torch (bitsandbytes' `Params4bit`,
  torchao's `Int8Tensor`, ...);
- one of its parameters, or a buffer whose name mentions a weight (`qweight`, `W_q`, ...), holds
  integers, booleans or an 8-bit float format instead of fp16/bf16/fp32/fp64;
- its class comes from a known quantization library (for layers whose packed weight is not there yet).
"""

from __future__ import annotations

import torch
from torch import nn

# Dtypes of ordinary (trainable) weights; anything else in a weight slot means packed/quantized storage.
PLAIN_FLOAT_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})

# Top-level packages whose modules are quantized layers (or the quantizers that build them).
QUANTIZATION_PACKAGES = frozenset(
    {
        "bitsandbytes",
        "torchao",
        "hqq",
        "gptqmodel",
        "auto_gptq",
        "awq",
        "eetq",
        "aqlm",
        "quanto",
        "optimum",
        "compressed_tensors",
        "fp_quant",
        "vptq",
        "fbgemm_gpu",
        "mslk",
    }
)

_CLASS_VERDICT: dict[type, str | None] = {}


def quantization_package(cls: type) -> str | None:
    """The quantization library `cls` comes from (its top-level package), or None."""
    top = cls.__module__.partition(".")[0]
    return top if top in QUANTIZATION_PACKAGES else None


def is_foreign_subclass(tensor: torch.Tensor) -> bool:
    """A tensor subclass that is not torch's own (DTensor, FakeTensor, UninitializedParameter, ... are)."""
    cls = type(tensor)
    if cls is nn.Parameter or cls is torch.Tensor:
        return False
    module = cls.__module__
    return not (module == "torch" or module.startswith("torch."))


def _describe_tensor(kind: str, name: str, tensor: torch.Tensor) -> str | None:
    if is_foreign_subclass(tensor):
        cls = type(tensor)
        return f"its {kind} {name!r} is a {cls.__module__}.{cls.__qualname__}"
    if tensor.dtype not in PLAIN_FLOAT_DTYPES and not tensor.is_complex():
        return f"its {kind} {name!r} is stored as {tensor.dtype}"
    return None


def quantization_of(module: nn.Module) -> str | None:
    """Why `module` counts as quantized (a phrase naming the evidence), or None for a plain module.

    Cheap enough to call for every targeted module: a look at the module's own parameters and
    weight-like buffers, and one cached check of its class."""
    for name, param in module._parameters.items():
        if param is not None:
            found = _describe_tensor("parameter", name, param)
            if found:
                return found
    for name, buffer in module._buffers.items():
        if buffer is not None and "weight" in name.lower():
            found = _describe_tensor("buffer", name, buffer)
            if found:
                return found
    cls = type(module)
    if cls not in _CLASS_VERDICT:
        package = quantization_package(cls)
        _CLASS_VERDICT[cls] = None if package is None else f"its class comes from the quantization library {package!r}"
    return _CLASS_VERDICT[cls]


def is_quantized(module: nn.Module) -> bool:
    return quantization_of(module) is not None


def describe_module_type(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"
