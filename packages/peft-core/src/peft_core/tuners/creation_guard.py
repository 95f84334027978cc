"""Creating adapter layers from an untrusted config: refuse what can't fit, and say which config it was.

A config read from a file can ask for a rank of a billion or a negative size. Torch would then
fail with an allocator or "negative dimension" error naming no config field, or, worse, reserve
the memory lazily and get the process killed by the OOM killer while initialising it. So:

- a config is *suspicious* when one of its integers (fields, or values in dict/list fields) is
  negative or larger than every dimension of the targeted modules; ordinary configs skip the rest;
- for a suspicious config, every tensor allocation made while the method creates its layers is
  checked before it happens against the memory left (`MemAvailable` plus free swap) and against
  negative sizes (a `TorchFunctionMode`), and refused with a `ConfigError` naming those values;
- any other error the method raises while creating layers (a `ValueError` about shapes, a torch
  error) becomes a `ConfigError` that names the config, its file and the module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ConfigError, PeftError

_FACTORIES = {
    torch.empty,
    torch.zeros,
    torch.ones,
    torch.full,
    torch.rand,
    torch.randn,
    torch.randint,
    torch.randperm,
    torch.eye,
    torch.arange,
}
_METHOD_FACTORIES = {torch.Tensor.new_empty, torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_full}


@dataclasses.dataclass
class CreationSite:
    """Where creation is (the module being adapted); the tuner updates `key` as it goes."""

    key: str = ""


def suspicious_values(config: Any, modules: Sequence[nn.Module]) -> list[str]:
    """`field=value` for each integer of the config that no targeted module's size comes close to."""
    largest = 0
    for module in modules:
        base = getattr(module, "get_base_layer", None)
        module = base() if callable(base) else module  # an adapter layer's own tensors are sized by the config
        for tensor in (*module.parameters(recurse=True), *module.buffers(recurse=True)):
            if tensor.dim():
                largest = max(largest, *tensor.shape)
    found = []
    for f in dataclasses.fields(config):
        for where, value in _integers(getattr(config, f.name, None), f.name):
            if value < 0 or value > max(largest, 1):
                found.append(f"{where}={value}")
    return found


def _integers(value: Any, where: str, depth: int = 0) -> Iterator[tuple[str, int]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield where, value
    elif depth < 4 and isinstance(value, dict):
        for k, v in value.items():
            yield from _integers(v, f"{where}[{k!r}]", depth + 1)
    elif depth < 4 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _integers(v, f"{where}[{i}]", depth + 1)


def available_memory_bytes() -> int:
    """Memory a process can still get: `MemAvailable` + `SwapFree` (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.split()[1:2]}
        return info.get("MemAvailable", info.get("MemFree", 0)) + info.get("SwapFree", 0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 2**62


class _AllocationBudget(TorchFunctionMode):
    """Refuse factory calls (torch.empty, zeros, randn, ...) with negative sizes or past the budget."""

    def __init__(self, budget: int, describe: Any) -> None:
        super().__init__()
        self.budget, self.used, self.describe = budget, 0, describe

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _FACTORIES or func in _METHOD_FACTORIES:
            self._check(func, args, kwargs)
        return func(*args, **kwargs)

    def _check(self, func: Any, args: tuple, kwargs: dict) -> None:
        device = kwargs.get("device")
        if device is not None and torch.device(device).type == "meta":
            return
        shape = _requested_shape(func, args, kwargs)
        if shape is None:
            return
        if any(d < 0 for d in shape):
            raise ConfigError(f"{self.describe()} asks for a tensor of negative size {list(shape)}.")
        dtype = kwargs.get("dtype")
        if dtype is None and func in _METHOD_FACTORIES and args and torch.is_tensor(args[0]):
            dtype = args[0].dtype
        if dtype is None:
            dtype = torch.int64 if func in (torch.randint, torch.randperm) else torch.get_default_dtype()
        itemsize = torch.empty((), dtype=dtype, device="meta").element_size()
        self.used += math.prod(shape) * itemsize
        if self.used > self.budget:
            raise ConfigError(
                f"{self.describe()} needs more than {_gib(self.used)} for its adapter tensors, more than the "
                f"{_gib(self.budget)} of memory available. Refusing it before allocating; lower the values."
            )


def _requested_shape(func: Any, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    positional = list(args[1:] if func in _METHOD_FACTORIES else args)
    if func is torch.arange:
        return None  # sized by values, not by a shape argument
    if func is torch.randperm or func is torch.eye:
        dims = [a for a in positional[:2] if isinstance(a, int) and not isinstance(a, bool)]
        return tuple(dims) if dims else None
    size = kwargs.get("size")
    if size is None and func is torch.randint:
        size = next((a for a in positional if isinstance(a, (tuple, list, torch.Size))), None)
    if size is None and positional and isinstance(positional[0], (tuple, list, torch.Size)):
        size = positional[0]
    if size is None:
        size = []
        for a in positional:
            if not isinstance(a, int) or isinstance(a, bool):
                break
            size.append(a)
    try:
        return tuple(int(d) for d in size)
    except (TypeError, ValueError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


@contextlib.contextmanager
def guard_adapter_creation(
    config: Any, adapter_name: str, modules: Sequence[nn.Module], on_meta: bool
) -> Iterator[CreationSite]:
    """Wrap the creation of adapter `adapter_name`'s layers (see the module docstring)."""
    site = CreationSite()
    flagged = suspicious_values(config, modules)
    label = _config_label(config)

    def describe() -> str:
        values = f" ({', '.join(flagged[:6])})" if flagged else ""
        return f"{label}{values}, creating adapter {adapter_name!r} on module {site.key!r},"

    budget = contextlib.nullcontext() if on_meta or not flagged else _AllocationBudget(available_memory_bytes(), describe)
    try:
        with budget:
            yield site
    except PeftError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, OverflowError, ZeroDivisionError, MemoryError) as exc:
        detail = str(exc).rstrip(". ")
        raise _config_error_like(type(exc))(
            f"{describe()} failed: {type(exc).__name__}: {detail}. The config does not fit this model; fix the "
            f"values named above (or the config file)."
        ) from exc


_ERROR_CLASSES: dict[type, type] = {}


def _config_error_like(original: type[BaseException]) -> type[ConfigError]:
    """A `ConfigError` that is also an instance of the original exception's class (a method's
    `TypeError` for an unsupported module stays catchable as one)."""
    if issubclass(ConfigError, original):
        return ConfigError
    cls = _ERROR_CLASSES.get(original)
    if cls is None:
        try:
            cls = type("ConfigError", (ConfigError, original), {"__module__": ConfigError.__module__})
        except TypeError:  # an exception class that can't be combined: ConfigError alone
            cls = ConfigError
        _ERROR_CLASSES[original] = cls
    return cls


def _config_label(config: Any) -> str:
    source = getattr(config, "__dict__", {}).get("_loaded_from")
    return f"{type(config).__name__}" + (f" from {source[0]}" if source else "")
