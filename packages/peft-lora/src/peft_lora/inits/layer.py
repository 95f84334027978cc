"""The data-driven initialisations on one LoRA Linear layer (called while the layer creates an adapter).

Each needs something prepared beforehand: LoRA-GA a gradient (`preprocess_loraga`), CorDA the layer's
eigens (`preprocess_corda`); LoftQ quantizes right here; EVA zeroes B and waits for
`initialize_lora_eva_weights`. LoRA-GA, CorDA and LoftQ change the base weight (the adapter fits the
residual); LoRA-GA without a gradient (loading a saved adapter) falls back to the default init, as in
Hugging Face PEFT.
"""

from __future__ import annotations

from typing import Any

import torch
from peft_core.errors import ConfigError

from .. import init as lora_init
from .configs import LoftQConfig

DATA_DRIVEN = ("lora_ga", "corda", "loftq", "eva")


def init_from_data(layer: Any, name: str, config: Any) -> None:
    family = layer.lora_init[name]
    lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
    base = layer.get_base_layer()
    if family == "eva":  # A is set by initialize_lora_eva_weights; until then the adapter is a no-op
        if not lora_b.weight.is_meta:
            with torch.no_grad():
                lora_b.weight.zero_()
        return
    if base.weight.is_meta or lora_a.weight.is_meta:
        return
    fan_in_fan_out = layer.fan_in_fan_out
    weight = base.weight.T if fan_in_fan_out else base.weight
    r, scaling = layer.r[name], layer.scaling[name]
    if family == "lora_ga":
        from .lora_ga import GRADIENT, lora_ga_factors

        gradient = getattr(base, GRADIENT, None)
        if gradient is None:  # no estimate (e.g. loading a saved adapter): the default init, weights loaded next
            lora_init.kaiming_uniform_(lora_a.weight)
            with torch.no_grad():
                lora_b.weight.zero_()
            return
        if config.lora_ga_config is None:
            raise ConfigError("init_lora_weights='lora_ga' needs lora_ga_config=LoraGAConfig(...).")
        gradient = gradient.T if fan_in_fan_out else gradient
        a, b, residual = lora_ga_factors(weight.data, gradient, r, scaling, config.lora_ga_config)
        delattr(base, GRADIENT)
    elif family == "corda":
        from .corda import EIGENS, corda_factors

        eigens = getattr(base, EIGENS, None)
        if eigens is None:
            raise ConfigError(
                "init_lora_weights='corda' needs the layer's eigens: call peft_lora.preprocess_corda(model, config, "
                "run_model) before get_peft_model (to load a trained CorDA adapter, save it converted with "
                "path_initial_model_for_weight_conversion, or load it with init_lora_weights=True onto the residual model)."
            )
        a, b, residual = corda_factors(weight.data, eigens, r, scaling, key=type(base).__name__)
        delattr(base, EIGENS)
    else:  # loftq
        from .loftq import loftq_factors

        settings = LoftQConfig(**config.loftq_config)
        a, b, residual = loftq_factors(weight.data, settings.loftq_bits, r, settings.loftq_iter)
    lora_a.weight.data = a
    lora_b.weight.data = b
    base.weight.data = residual.T if fan_in_fan_out else residual
