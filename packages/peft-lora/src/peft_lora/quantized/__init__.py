"""LoRA layers for quantized base models, one module per quantization library.

The dispatchers registered here (peft-core's layer-dispatch registry, method "lora", `quantized=True`)
look at a module's class and weight type by name first, and import their library's module
(`bnb.py`, `torchao.py`, `hqq.py`) only when the module comes from that library; so neither
`import peft_lora` nor adapting a plain model imports bitsandbytes, torchao or hqq.

GPTQ / AWQ / EETQ / AQLM layers and torchao or bitsandbytes types not listed here have no LoRA layer:
peft-core refuses them by type (`UnsupportedLayerError`), so they are never wrapped as plain layers.
"""

from __future__ import annotations

from importlib import import_module

from peft_core import DispatchRequest, register_layer_dispatcher
from peft_core.tuners.quantization import quantization_package

from ..layers import METHOD

# library (top-level package of the module class, or of its weight's class) -> module in this package
_BACKENDS = {"bitsandbytes": ".bnb", "torchao": ".torchao", "hqq": ".hqq"}


def _library_of(request: DispatchRequest) -> str | None:
    module = request.module
    found = quantization_package(type(module))
    if found is None:
        weight = module._parameters.get("weight")
        if weight is not None:
            found = quantization_package(type(weight))
    return found if found in _BACKENDS else None


def dispatch_quantized_layer(request: DispatchRequest) -> type | None:
    """The LoRA layer class for a bitsandbytes, torchao or HQQ module (None for anything else)."""
    library = _library_of(request)
    if library is None:
        return None
    backend = import_module(_BACKENDS[library], __name__)
    return backend.dispatch(request.module)


register_layer_dispatcher(METHOD, "quantized", dispatch_quantized_layer, quantized=True, priority=10)

__all__ = ["dispatch_quantized_layer"]
