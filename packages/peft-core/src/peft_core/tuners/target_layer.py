"""Putting a method's layer on a matched module, declared instead of written out.

Most methods' `_create_and_replace` takes the same steps: a module that already holds the method's layer
gets the new adapter (`update_layer`); otherwise the module (in a mixed-method model, the module another
method's layer wraps, see `BaseTuner.wrapped_base`) must be of a type the method supports, else one wording
of refusal names the module, the method and the supported types; a config with `fan_in_fan_out` is
reconciled with the module (Hugging Face PEFT's rule, with its warning); the layer is built around the
module, given the adapter and put in the parent's place. A `TargetLayerTuner` declares what varies (a
`TargetLayer`) and overrides `layer_args` / `new_layer` where a value depends on the module or the tuner.
A method that writes `_create_and_replace` itself keeps working.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

from torch import nn

from ..config import PeftConfig
from ..errors import ConfigError, unsupported_target
from .layer import BaseTunerLayer
from .linear_targets import linear_features, reconcile_fan_in_fan_out
from .matching import pattern_value
from .tuner import BaseTuner


@dataclasses.dataclass(frozen=True)
class TargetTypes:
    """The base modules a layer can wrap (`accepts`), how a refusal lists them (`described`), and whether
    the layer takes their weight layout (`fan_in_fan_out=`, for transformers' `Conv1D`)."""

    accepts: Callable[[nn.Module], bool]
    described: str
    takes_layout: bool = False


LINEAR = TargetTypes(lambda module: isinstance(module, nn.Linear), "torch.nn.Linear only")
PLAIN_LINEAR = TargetTypes(
    lambda module: type(module) is nn.Linear, "only plain torch.nn.Linear (not a subclass, as in Hugging Face PEFT)"
)
LINEAR_OR_CONV1D = TargetTypes(
    lambda module: linear_features(module) is not None, "torch.nn.Linear and transformers' Conv1D", takes_layout=True
)


@dataclasses.dataclass(frozen=True)
class PerModule:
    """An entry of `TargetLayer.args`: config field `field`, overridden per module by the `{pattern: value}`
    dict in field `patterns` (`rank_pattern`-style keys, see `peft_core.pattern_value`)."""

    field: str
    patterns: str

    def value(self, config: Any, current_key: str) -> Any:
        return pattern_value(getattr(config, self.patterns), current_key, getattr(config, self.field))


@dataclasses.dataclass(frozen=True)
class TargetLayer:
    """What a `TargetLayerTuner` puts on each target.

    - `layer_cls`: the method's layer; a target already of this class gets the new adapter.
    - `method`: the method's name in refusals ("" for the tuner's class name).
    - `targets`: the base modules it wraps (`LINEAR`, `PLAIN_LINEAR`, `LINEAR_OR_CONV1D` or your own).
    - `args`: config fields passed to `update_layer` after the adapter name, in order (a `PerModule` entry reads
      a per-module value); None passes the config.
    - `nests`: in a mixed-method model, wrap another method's layer (judged by the module it wraps); False
      judges the target itself, for layers that compute with the base weight.
    - `error`: the refusal's class (`ConfigError`; a method whose users catch `TypeError` may keep that).
    """

    layer_cls: type[BaseTunerLayer]
    method: str = ""
    targets: TargetTypes = LINEAR
    args: tuple[str | PerModule, ...] | None = None
    nests: bool = True
    error: type[Exception] = ConfigError


class TargetLayerTuner(BaseTuner):
    """A tuner whose `_create_and_replace` follows its `target_layer` declaration (see the module docstring)."""

    target_layer: ClassVar[TargetLayer]

    def layer_args(self, config: PeftConfig, adapter_name: str, current_key: str) -> tuple[Any, ...]:
        """Hook: what `update_layer` gets after the adapter name (default: `target_layer.args` read from the
        config, or the config itself). Override for per-module values (rank patterns). Asked once the target
        is known to be supported (a new layer exists by then)."""
        fields = self.target_layer.args
        if fields is None:
            return (config,)
        return tuple(f.value(config, current_key) if isinstance(f, PerModule) else getattr(config, f) for f in fields)

    def new_layer(self, target: nn.Module, config: PeftConfig, current_key: str) -> BaseTunerLayer:
        """Hook: the layer around `target`, a supported module (default: `layer_cls(target)`, plus
        `fan_in_fan_out=` when the targets take a layout). Override to pass the tuner's shared tensors."""
        spec = self.target_layer
        if spec.targets.takes_layout:
            return spec.layer_cls(target, fan_in_fan_out=config.fan_in_fan_out)  # type: ignore[call-arg]
        return spec.layer_cls(target)  # type: ignore[call-arg]

    def _create_and_replace(  # noqa: D102 - BaseTuner's hook
        self, config: PeftConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module, current_key: str
    ) -> None:
        spec = self.target_layer
        if isinstance(target, spec.layer_cls):
            _update(target, adapter_name, self.layer_args(config, adapter_name, current_key), current_key)
            return
        base = self.wrapped_base(target, current_key) if spec.nests else target
        if not spec.targets.accepts(base):
            refusal = unsupported_target(current_key, base, spec.method or type(self).__name__, spec.targets.described)
            raise refusal if spec.error is ConfigError else spec.error(str(refusal))
        if hasattr(config, "fan_in_fan_out"):
            reconcile_fan_in_fan_out(config, base, stacklevel=4)
        layer = self.new_layer(target, config, current_key)
        _update(layer, adapter_name, self.layer_args(config, adapter_name, current_key), current_key)
        setattr(parent, target_name, layer)


def _update(layer: BaseTunerLayer, adapter_name: str, args: tuple[Any, ...], current_key: str) -> None:
    """`layer.update_layer(adapter_name, *args)`; a `ConfigError` it raises (a size the module can't
    take) names the module."""
    try:
        layer.update_layer(adapter_name, *args)
    except ConfigError as exc:
        if type(exc) is not ConfigError or str(exc).startswith(repr(current_key)):
            raise
        raise ConfigError(f"{current_key!r}: {exc}") from None
