"""`peft.utils.transformers_weight_conversion`: what transformers' own `load_adapter` asks the PEFT library for.

transformers renames the keys of an adapter file with its `WeightRenaming` objects before loading it
into a model whose adapters were injected in place. The renames themselves come from peft-core
(`adapter_key_renames`); this module only wraps them in transformers' class and keeps the model's own
renames. Weight *converters* of the base model (fused MoE experts, ...) are not adapted: adapters on such
converted weights are not supported here (see docs/migrating.md).
"""

from __future__ import annotations

from typing import Any

from peft_core.integrations.transformers_weights import adapter_key_renames


def build_peft_weight_mapping(weight_conversions: list[Any] | None, adapter_name: str, peft_config: Any = None) -> list[Any]:
    from transformers.core_model_loading import WeightRenaming

    peft_type = getattr(peft_config, "peft_type", None)
    renames = [WeightRenaming(source, target) for source, target in adapter_key_renames(peft_type, adapter_name)]
    renames += [c for c in weight_conversions or [] if isinstance(c, WeightRenaming)]
    return renames


__all__ = ["build_peft_weight_mapping"]
