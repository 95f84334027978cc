"""Flat walks of a module tree: `nn.Module.named_modules()` / `modules()` results in one loop.

torch's walks recurse through one generator per module, so every module yielded passes through the
generators of all its ancestors; on a model with a few thousand modules (64 layers with adapters)
each walk costs several milliseconds, and creating an adapter walks the model several times. These
return the same modules, names, order (pre-order, children in registration order) and
de-duplication (a module reachable twice comes once, at its first position).
"""

from __future__ import annotations

from typing import Iterator

from torch import nn


def named_modules(root: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """`list(root.named_modules(prefix=prefix))`."""
    out: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [(prefix, root)]
    while stack:
        key, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append((key, module))
        children = module._modules
        if children:
            dot = f"{key}." if key else ""
            stack.extend((dot + name, child) for name, child in reversed(children.items()) if child is not None)
    return out


def modules(root: nn.Module) -> Iterator[nn.Module]:
    """`root.modules()`."""
    seen: set[int] = set()
    stack: list[nn.Module] = [root]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        yield module
        children = module._modules
        if children:
            stack.extend(child for child in reversed(children.values()) if child is not None)


def parameters(root: nn.Module) -> Iterator[nn.Parameter]:
    """`root.parameters()`."""
    seen: set[int] = set()
    for module in modules(root):
        for param in module._parameters.values():
            if param is not None and id(param) not in seen:
                seen.add(id(param))
                yield param
