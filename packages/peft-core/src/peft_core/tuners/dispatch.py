"""Layer dispatch: which adapter-layer class wraps a targeted module, per method, open to plug-ins.

A method registers dispatchers (functions from a `DispatchRequest` to a layer class, or None when
they don't handle the module) and asks `dispatch_layer(method, module)` for each target. Support for
a new layer type (a quantized linear from another library, say) can then come from another package:
it registers a dispatcher for the method when imported, and names that module in the
`peft.layer_dispatchers` entry-point group so it is imported when the method meets a module that no
dispatcher claims.

Quantized modules (see `tuners.quantization`) are offered only to dispatchers registered with
`quantized=True`: a plain-layer dispatcher can never wrap a packed weight by accident (bitsandbytes'
`Linear4bit` subclasses `nn.Linear`). A quantized module no dispatcher claims is refused with
`UnsupportedLayerError`, naming its type; `BaseTuner` applies that rule to every method's targets.

    from peft_core import register_layer_dispatcher

    def my_dispatch(request):
        if type(request.module).__name__ == "MyQuantLinear":
            from .my_layers import LoraMyQuantLinear     # import the library only now
            return LoraMyQuantLinear
        return None

    register_layer_dispatcher("lora", "my-quant", my_dispatch, quantized=True)
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..errors import RegistrationError, UnsupportedLayerError
from .quantization import describe_module_type, quantization_of

ENTRY_POINT_GROUP = "peft.layer_dispatchers"


@dataclass(frozen=True)
class DispatchRequest:
    """What a dispatcher sees: the module to wrap (never an adapter layer), where it is, and the config.

    `quantization` is None for a plain module, else why it counts as quantized. `model` is the model
    being adapted when the caller knows it (quantizer settings live there, e.g. transformers'
    `hf_quantizer`)."""

    method: str
    module: nn.Module
    key: str = ""
    config: Any = None
    model: nn.Module | None = None
    quantization: str | None = None


Dispatcher = Callable[[DispatchRequest], "type | None"]


@dataclass(frozen=True)
class LayerDispatcher:
    method: str
    name: str
    dispatch: Dispatcher
    quantized: bool
    priority: int
    order: int


_DISPATCHERS: dict[str, dict[str, LayerDispatcher]] = {}
_SORTED: dict[str, list[LayerDispatcher]] = {}
_LOCK = threading.RLock()
_ORDER = [0]
_ENTRY_POINTS_LOADED = [False]


def register_layer_dispatcher(
    method: str,
    name: str,
    dispatch: Dispatcher,
    *,
    quantized: bool = False,
    priority: int = 0,
) -> LayerDispatcher:
    """Register `dispatch` for `method` (its registered name, e.g. "lora") under `name`.

    Dispatchers run by descending `priority`, then in registration order; the first that returns a
    class wins. `quantized=True` means the dispatcher may be offered quantized modules (it must then
    check the module's type itself). Registering the same function under the same name again is a
    no-op; another function under a taken name is a `RegistrationError` (unregister first)."""
    method = method.lower()
    if not callable(dispatch):
        raise RegistrationError(f"Layer dispatcher {name!r} for {method!r} must be callable, got {dispatch!r}.")
    with _LOCK:
        found = _DISPATCHERS.setdefault(method, {}).get(name)
        if found is not None:
            if found.dispatch is dispatch and found.quantized == quantized and found.priority == priority:
                return found
            raise RegistrationError(
                f"A layer dispatcher named {name!r} is already registered for {method!r} ({found.dispatch!r}); "
                f"call unregister_layer_dispatcher({method!r}, {name!r}) first or pick another name."
            )
        _ORDER[0] += 1
        entry = LayerDispatcher(method, name, dispatch, bool(quantized), int(priority), _ORDER[0])
        _DISPATCHERS[method][name] = entry
        _SORTED.pop(method, None)
        return entry


def unregister_layer_dispatcher(method: str, name: str) -> None:
    with _LOCK:
        _DISPATCHERS.get(method.lower(), {}).pop(name, None)
        _SORTED.pop(method.lower(), None)


def layer_dispatchers(method: str) -> list[LayerDispatcher]:
    """The dispatchers of `method`, in the order they are consulted."""
    method = method.lower()
    found = _SORTED.get(method)
    if found is None:
        with _LOCK:
            found = sorted(_DISPATCHERS.get(method, {}).values(), key=lambda d: (-d.priority, d.order))
            _SORTED[method] = found
    return found


def load_dispatcher_entry_points() -> list[str]:
    """Import every `peft.layer_dispatchers` entry point once (each registers its dispatchers when
    imported, or is a function called with no arguments). A plug-in that fails to load is reported
    with a warning, not raised: it must not break methods that never needed it."""
    with _LOCK:
        if _ENTRY_POINTS_LOADED[0]:
            return []
        _ENTRY_POINTS_LOADED[0] = True
    from importlib.metadata import entry_points

    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not fatal
            warnings.warn(
                f"Layer-dispatcher plug-in {ep.name!r} ({ep.value}) failed to load and was skipped: {exc!r}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        loaded.append(ep.name)
    return loaded


def _first_claim(request: DispatchRequest) -> type | None:
    quantized = request.quantization is not None
    for dispatcher in layer_dispatchers(request.method):
        if quantized and not dispatcher.quantized:
            continue
        cls = dispatcher.dispatch(request)
        if cls is not None:
            return cls
    return None


def dispatch_layer(
    method: str,
    module: nn.Module,
    *,
    key: str = "",
    config: Any = None,
    model: nn.Module | None = None,
) -> type | None:
    """The layer class `method`'s dispatchers pick for `module`; None if none handles a plain module.

    Raises `UnsupportedLayerError` for a quantized module that no dispatcher claims (after importing
    the `peft.layer_dispatchers` plug-ins), naming its type and why it counts as quantized."""
    request = DispatchRequest(method.lower(), module, key, config, model, quantization_of(module))
    cls = _first_claim(request)
    if cls is None and load_dispatcher_entry_points():
        cls = _first_claim(request)
    if cls is None and request.quantization is not None:
        raise UnsupportedLayerError(unsupported_quantized_message(request))
    return cls


def unsupported_quantized_message(request: DispatchRequest) -> str:
    where = f"Target module {request.key!r}" if request.key else "The target module"
    claimers = [d.name for d in layer_dispatchers(request.method) if d.quantized]
    known = f" Quantized layer types it handles come from: {', '.join(claimers)}." if claimers else ""
    return (
        f"{where} is a quantized {describe_module_type(request.module)} ({request.quantization}); "
        f"no layer dispatcher of method {request.method!r} handles this type, and wrapping it as a plain layer "
        f"would break backward and merging.{known} Install the method package's extra for this quantization "
        f"library if it has one, or a package that registers a dispatcher for it; or exclude the module (exclude_modules) / target "
        f"non-quantized modules only."
    )


def check_quantized_target(
    method: str, module: nn.Module, *, key: str = "", config: Any = None, model: nn.Module | None = None
) -> None:
    """Refuse a quantized `module` that `method` has no dispatcher for (plain modules pass untouched).

    `BaseTuner` calls this for every new target of every method, so a method that picks its layers
    by `isinstance` still never wraps a packed weight as a plain layer."""
    if quantization_of(module) is None:
        return
    dispatch_layer(method, module, key=key, config=config, model=model)
