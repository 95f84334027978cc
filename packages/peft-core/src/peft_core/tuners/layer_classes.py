"""Which adapter-layer class wraps a targeted module, chosen by the module's type, and one wording for
the refusal when a method has none for it.

A method that wraps a few plain module types (`nn.Linear`, `nn.Conv2d`, `nn.Embedding` ...) lists them
with its layer classes, either to `layer_class_for` or as `LayerClassTuner.layer_classes` (then it
needs no `_create_and_replace` of its own). A module of another type is refused with a message naming
the method, the module and the supported types (a `TypeError`; adapter creation turns it into a
`ConfigError` that names the config). Methods with quantized or plug-in layers use `tuners.dispatch`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence, TypeVar

from torch import nn

from ..config import PeftConfig
from .layer import BaseTunerLayer
from .linear_targets import is_transformers_conv1d, reconcile_fan_in_fan_out
from .tuner import BaseTuner

L = TypeVar("L")


def layer_class_for(
    method: str, key: str, module: nn.Module, layer_classes: Sequence[tuple[type[nn.Module], L]]
) -> L:
    """The layer class paired with the first type in `layer_classes` that `module` is an instance of.

    `method` is the name shown to users (e.g. "OFT"), `key` the module's name in the model."""
    for module_type, layer_class in layer_classes:
        if isinstance(module, module_type):
            return layer_class
    raise TypeError(unsupported_target_message(method, key, module, [t for t, _ in layer_classes]))


def unsupported_target_message(method: str, key: str, module: nn.Module, supported: Sequence[type]) -> str:
    """"Target module 'x' (Conv1d) is not supported by M: only torch.nn.Linear and torch.nn.Conv2d are. ..." """
    names = [_type_name(t) for t in supported]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    hint = " transformers' Conv1D (GPT-2) is not a torch.nn.Linear." if is_transformers_conv1d(module) else ""
    return (
        f"Target module {key!r} ({type(module).__name__}) is not supported by {method}: only {listed} "
        f"{'is' if len(names) == 1 else 'are'}.{hint} Adjust target_modules."
    )


def _type_name(cls: type) -> str:
    if cls.__module__.startswith("torch.nn."):
        return f"torch.nn.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


class LayerClassTuner(BaseTuner):
    """A tuner that wraps each target in the layer class `layer_classes` pairs with the target's type.

    A new adapter on a module that already holds one of the method's layers is added to that layer
    (`update_layer(adapter_name, config)`). `method_label` names the method in refusals.
    `no_nesting_types`: base-module types whose layer computes with the base weight itself (a rotated
    or reflected weight), so it can't wrap another method's layer in a mixed-method model. On an
    `nn.Linear`, a config with `fan_in_fan_out` gets Hugging Face PEFT's correction and warning.
    """

    layer_classes: ClassVar[tuple[tuple[type[nn.Module], type[BaseTunerLayer]], ...]] = ()
    method_label: ClassVar[str] = ""
    no_nesting_types: ClassVar[tuple[type[nn.Module], ...]] = ()

    def _create_and_replace(  # noqa: D102 - BaseTuner's hook
        self, config: PeftConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        if isinstance(target, tuple(layer for _, layer in self.layer_classes)):
            target.update_layer(adapter_name, config)  # type: ignore[call-arg]
            return
        base = self.wrapped_base(target, current_key)  # another method's layer: wrap it (mixed models only)
        layer_class = layer_class_for(self.method_label, current_key, base, self.layer_classes)
        if base is not target and isinstance(base, self.no_nesting_types):
            raise TypeError(
                f"Target module {current_key!r} already holds a {type(target).__name__}; {self.method_label} on a "
                f"{type(base).__name__} computes with the base weight itself, so it can't wrap another method's layer. "
                f"Add the {self.method_label} adapter first, or exclude this module."
            )
        if isinstance(base, nn.Linear) and hasattr(config, "fan_in_fan_out"):
            reconcile_fan_in_fan_out(config, base)
        layer: Any = layer_class(target)
        layer.update_layer(adapter_name, config)
        setattr(parent, target_name, layer)
