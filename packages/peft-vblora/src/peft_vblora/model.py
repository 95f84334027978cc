"""`VBLoRAModel`: puts VB-LoRA layers on the targeted modules and owns each adapter's vector bank.

The bank of adapter `a` is `base_model.vblora_vector_bank.a` (saved as `base_model.vblora_vector_bank`,
Hugging Face PEFT's key); it trains with its adapter and is shared by all of the adapter's layers.
With `save_only_topk_weights` the logits are saved in their compact form (see `topk.py`).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from peft_core import BaseTuner, ConfigError
from peft_core.tuners.linear_targets import linear_features, reconcile_fan_in_fan_out
from peft_core.tuners.tuner_state import TunerParameterDict

from .config import VBLoRAConfig
from .defaults import VBLORA_TARGETS
from .layer import VBLoRALinear
from .topk import compact_logits, expand_logits

BANK = "vblora_vector_bank"


class VBLoRAModel(BaseTuner):
    prefix = "vblora_"
    uses_shared_state = True  # the vector bank every layer indexes lives on the tuner (inject_adapter_in_model refuses)
    config_cls = VBLoRAConfig
    default_target_modules = VBLORA_TARGETS

    # -- injection ------------------------------------------------------------------------------
    def inject_adapter(self, model: nn.Module, adapter_name: str, **kwargs: bool) -> None:
        if BANK not in self._modules:  # BaseTuner trains, saves and deletes it with the adapters
            self.vblora_vector_bank = TunerParameterDict()
        try:
            super().inject_adapter(model, adapter_name, **kwargs)
        except BaseException:
            self.vblora_vector_bank.delete_adapter(adapter_name)
            raise

    def _draw_bank(self, config: VBLoRAConfig, adapter_name: str, reference: torch.Tensor) -> None:
        """A fresh bank, uniform in ±init_vector_bank_bound. Hugging Face PEFT draws one for every target
        and keeps the last; doing the same keeps seeded initialisations identical to its."""
        bank = torch.zeros(config.num_vectors, config.vector_length)
        if not bank.is_meta:
            nn.init.uniform_(bank, -config.init_vector_bank_bound, config.init_vector_bank_bound)
        if not reference.is_meta:  # the base weight's device and float dtype, as HF's layers move it
            dtype = reference.dtype if reference.is_floating_point() else None
            # a meta bank (low_cpu_mem_usage) takes the dtype too: the loaded tensor is cast to it
            bank = bank.to(dtype=dtype) if bank.is_meta else bank.to(reference.device, dtype)
        self.vblora_vector_bank[adapter_name] = nn.Parameter(bank)

    def _create_and_replace(self, config: VBLoRAConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str) -> None:
        base = target.get_base_layer() if isinstance(target, VBLoRALinear) else target
        if linear_features(base) is None:
            raise ConfigError(
                f"Target module {current_key!r} ({type(target).__name__}) is not supported by VB-LoRA; supported are "
                f"torch.nn.Linear and transformers' Conv1D. Adjust target_modules."
            )
        self._draw_bank(config, adapter_name, base.weight)
        args = dict(r=config.r, topk=config.topk, num_vectors=config.num_vectors, vector_length=config.vector_length,
                    dropout=config.vblora_dropout, init_logits_std=config.init_logits_std)
        if isinstance(target, VBLoRALinear):
            target.update_layer(adapter_name, **args)
            return
        reconcile_fan_in_fan_out(config, target)
        layer = VBLoRALinear(target, self.vblora_vector_bank, fan_in_fan_out=config.fan_in_fan_out)
        layer.update_layer(adapter_name, **args)
        setattr(parent, target_name, layer)

    # -- compact files --------------------------------------------------------------------------------
    def postprocess_saved_state(self, adapter_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        config = self.peft_config[adapter_name]
        if not config.save_only_topk_weights:
            return state
        return compact_logits(state, config.topk, config.num_vectors)

    def remap_state_dict_for_load(
        self, adapter_name: str, state: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        config = self.peft_config.get(adapter_name)
        if config is None or not config.save_only_topk_weights:
            return state
        return expand_logits(state, config.num_vectors)

    # -- counting ----------------------------------------------------------------------------------
    def get_nb_savable_parameters(self, adapter: str = "default") -> tuple[int, int]:
        """(VB-LoRA numbers saved, in float32 equivalents; other saved trainable numbers), as HF counts them."""
        config = self.peft_config[adapter]
        logits = bank = other = 0
        for name, param in self.named_parameters():
            if "vblora_logits" in name:
                logits += param.numel()
            elif BANK in name:
                bank += param.numel()
            elif param.requires_grad:
                other += param.numel()
        if not config.save_only_topk_weights:
            return bank + logits, other
        index_bytes = 1 if config.num_vectors < 2**8 else 2 if config.num_vectors < 2**15 else 4 if config.num_vectors < 2**31 else 8
        per_piece = logits / config.num_vectors
        topk_numbers = per_piece * (config.topk - 1) + per_piece * config.topk * index_bytes / 4
        return int(bank + topk_numbers), other

    def print_savable_parameters(self) -> None:
        vblora, other = self.get_nb_savable_parameters()
        print(f"VB-LoRA params to-be-saved (float32-equivalent): {vblora:,d} || total params to-be-saved: {vblora + other:,d}")
