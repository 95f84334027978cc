"""LoRA variants: per-adapter behaviour that replaces plain LoRA's `result + s·B(A(x))` on a layer.

A layer keeps one `LoraVariant` per adapter that uses one (`LoraLayer.lora_variant`); the plain path
(and its fast paths) runs for every other adapter. `variant_for(config, layer)` picks the variant a
config asks for on a layer, or None, and refuses combinations and layer types that can't work.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable, Iterator, Sequence

import torch
from torch import nn


class LoraVariant:
    """Base class: how one adapter of one layer computes, and what it refuses."""

    #: why this variant can't be merged into the base weights (None: it can, as plain LoRA)
    merge_refusal: str | None = None
    #: the config option that asks for this variant; its value (the variant's settings) goes to __init__
    option: ClassVar[str] = ""
    #: the variant's name in errors ("BD-LoRA", ...)
    label: ClassVar[str] = ""
    #: what to target instead, in the error for a layer the variant can't work on
    linear_targets: ClassVar[str] = "linear layers"

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    @classmethod
    def for_layer(cls, config: Any, layer: Any) -> LoraVariant:
        """The variant for adapter config `config` on `layer`; `ConfigError` for a layer it can't work on
        (any but a plain linear one: override to refuse more)."""
        require_plain_linear(layer, f"{cls.label} ({cls.option})", cls.linear_targets)
        return cls(getattr(config, cls.option))

    def init(self, layer: Any, name: str, config: Any) -> None:
        """Called once the layer has created adapter `name`'s factors (replace or add tensors here)."""

    def delta_weight(self, layer: Any, name: str) -> torch.Tensor | None:
        """The merged update `ΔW` when it is not plain LoRA's `s·B@A` (None: plain LoRA's)."""
        return None

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        """`result` (the base output for `x`) with adapter `name` applied; `rows` are the batch rows `x`
        holds in a mixed-adapter batch (None: the whole batch)."""
        raise NotImplementedError


def require_plain_linear(layer: Any, feature: str, targets: str = "linear layers") -> None:
    """Refuse (`ConfigError`) any layer but peft-lora's plain, unquantized `Linear`: the variants that
    replace its forward pass use its `lora_A`/`lora_B` modules and its float weight."""
    from ..layers.linear import Linear

    if type(layer) is not Linear:
        from peft_core.errors import ConfigError

        raise ConfigError(
            f"{feature} works on plain (unquantized) linear layers only, not on {type(layer).__name__}; "
            f"restrict target_modules to {targets}."
        )


def adapter_entries(
    modules: Iterable[Any], container: str, adapter_names: Sequence[str]
) -> Iterator[tuple[nn.Module, str, Any]]:
    """(layer, adapter, entry) for each of `adapter_names` in the adapter container `container` of each
    layer that has one (a variant's own tensors: KaSA's `lora_diag`, MonteCLoRA's samplers)."""
    for module in modules:
        entries = module._modules.get(container) if isinstance(module, nn.Module) else None
        if entries is None:
            continue
        for name in adapter_names:
            if name in entries:
                yield module, name, entries[name]


def variant_for(config: Any, layer: Any) -> LoraVariant | None:
    """The variant `config` asks for on `layer` (None for plain LoRA); one variant per adapter."""
    requested = [
        option
        for option, on in (
            ("use_dora", bool(getattr(config, "use_dora", False))),
            ("alora_invocation_tokens", getattr(config, "alora_invocation_tokens", None) is not None),
            ("use_bdlora", getattr(config, "use_bdlora", None) is not None),
            ("velora_config", getattr(config, "velora_config", None) is not None),
            ("kasa_config", getattr(config, "kasa_config", None) is not None),
            ("monteclora_config", getattr(config, "monteclora_config", None) is not None),
        )
        if on
    ]
    if len(requested) > 1:
        from peft_core.errors import ConfigError

        raise ConfigError(f"LoRA variants can't be combined: {requested} were all requested; keep one of them.")
    if "alora_invocation_tokens" in requested:
        from .alora import ALoraVariant

        return ALoraVariant.for_layer(config, layer)
    if "use_bdlora" in requested:
        from .bdlora import BdLoraVariant

        return BdLoraVariant.for_layer(config, layer)
    if "velora_config" in requested:
        from .velora import VeloraVariant

        return VeloraVariant.for_layer(config, layer)
    if "kasa_config" in requested:
        from .kasa import KasaVariant

        return KasaVariant.for_layer(config, layer)
    if "monteclora_config" in requested:
        from .monteclora import MontecloraVariant

        return MontecloraVariant.for_layer(config, layer)
    return None


__all__ = ["LoraVariant", "adapter_entries", "require_plain_linear", "variant_for"]
