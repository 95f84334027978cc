"""KaSA (Knowledge-aware Singular-value Adaptation, arXiv:2412.06071) as a LoRA variant.

Creating a KaSA adapter rewrites the base weight once: its SVD keeps the `min(in, out) - r` largest
components and drops the `r` smallest (the "noisy" tail). The update is then `scaling · B diag(ΔΣ) A`
with a learned vector `lora_diag` (saved with the adapter). The rewrite is destructive by design (disable,
unload and unmerge give the truncated weight, as in Hugging Face PEFT), which is why KaSA adapters can't
share a model with plain ones. Hugging Face PEFT 0.21.2's keys and outputs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import torch
from peft_core.errors import ConfigError
from torch import nn

from . import LoraVariant, adapter_entries

DIAG = "lora_diag"


def check_kasa_mix(configs: Mapping[str, Any], new: str) -> None:
    """Refuse a model holding KaSA and non-KaSA adapters (KaSA's truncation changes what the others see)."""
    uses = getattr(configs[new], "kasa_config", None) is not None
    for name, config in configs.items():
        if name != new and (getattr(config, "kasa_config", None) is not None) is not uses:
            raise ConfigError(
                f"Adapter {new!r} {'uses' if uses else 'does not use'} KaSA but adapter {name!r} "
                f"{'does not' if uses else 'does'}: KaSA truncates the base weights when it is created, so KaSA and "
                f"plain adapters can't share a model. Use a separate copy of the base model."
            )


def check_rank(layer: Any, r: int) -> None:
    weight = layer.get_base_layer().weight
    if r >= min(weight.shape):
        raise ConfigError(
            f"KaSA needs r ({r}) smaller than min(in_features, out_features) ({min(weight.shape)}) of the "
            f"{tuple(weight.shape)} weight: at least one singular component of the base weight must remain. Lower r."
        )


def truncate_base_weight(layer: Any, r: int) -> None:
    """Replace the base weight by its SVD without the `r` smallest singular components (fp32 SVD)."""
    base = layer.get_base_layer()
    weight = base.weight
    keep = min(weight.shape) - r
    u, s, vh = torch.linalg.svd(weight.detach().to(torch.float32), full_matrices=False)
    base.weight.data = ((u[:, :keep] * s[:keep]) @ vh[:keep, :]).to(weight.dtype)


def truncate_pending(modules: Iterable[nn.Module]) -> None:
    """Run the base-weight truncations of the KaSA adapters just created. Called once the whole injection
    has succeeded, so that a refused target (which undoes the injection) leaves every base weight as it was."""
    for module in modules:
        variants = getattr(module, "lora_variant", None)
        if not variants:
            continue
        for name, variant in variants.items():
            if isinstance(variant, KasaVariant) and variant.pending:
                with torch.no_grad():
                    truncate_base_weight(module, module.r[name])
                variant.pending = False


class KasaVariant(LoraVariant):
    """One KaSA adapter on one `nn.Linear` (not Conv1D: the SVD is of an (out, in) weight)."""

    option, label, linear_targets = "kasa_config", "KaSA", "nn.Linear layers"

    @classmethod
    def for_layer(cls, config: Any, layer: Any) -> LoraVariant:
        variant = super().for_layer(config, layer)
        if layer.fan_in_fan_out:
            raise ConfigError(
                "KaSA (kasa_config) does not support fan_in_fan_out layers (e.g. GPT-2's Conv1D); target nn.Linear "
                "layers."
            )
        return variant

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self.pending = False  # the base weight is truncated once the injection has succeeded

    def init(self, layer: Any, name: str, config: Any) -> None:
        base_weight = layer.get_base_layer().weight
        if base_weight.is_meta:
            raise ConfigError(
                "KaSA must truncate the base weight when its adapter is created, but the base model's weights are on "
                "the meta device; load the base model's weights first."
            )
        lora_a = layer.lora_A[name].weight
        r = layer.r[name]
        check_rank(layer, r)
        if lora_a.is_meta:  # low_cpu_mem_usage: the values come from the adapter file
            diag = torch.empty(r, device="meta", dtype=lora_a.dtype)
        else:  # any values: B starts at zero, so the update does too
            diag = torch.randn(r, device=lora_a.device, dtype=lora_a.dtype)
        layer._own_container(DIAG, nn.ParameterDict)[name] = nn.Parameter(diag)
        self.pending = True

    def delta_weight(self, layer: Any, name: str) -> torch.Tensor:
        weight_a, weight_b = layer.lora_A[name].weight, layer.lora_B[name].weight
        diag = layer.lora_diag[name]
        dtype = weight_b.dtype
        cast = weight_b.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16)
        if cast:
            weight_a, weight_b, diag = weight_a.float(), weight_b.float(), diag.float()
        delta = ((weight_b * diag) @ weight_a) * layer.scaling[name]
        return delta.to(dtype) if cast else delta

    def apply(
        self, layer: Any, name: str, x: torch.Tensor, result: torch.Tensor, rows: Sequence[int] | None = None
    ) -> torch.Tensor:
        lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
        x = layer._cast_input(x, lora_a.weight)
        after_a = lora_a(layer.lora_dropout[name](x))
        return result + lora_b(after_a * layer.lora_diag[name]) * layer.scaling[name]


def layer_regularization(layer: Any, name: str, beta: float, gamma: float) -> torch.Tensor:
    """`beta · sum(diag²) + gamma · (‖BᵀB − I‖_F + ‖AAᵀ − I‖_F)` for one layer's adapter, in fp32."""
    diag = layer.lora_diag[name].float()
    a = layer.lora_A[name].weight.float()
    b = layer.lora_B[name].weight.float()
    eye = torch.eye(diag.shape[0], device=diag.device, dtype=torch.float32)
    orthogonality = torch.linalg.norm(b.transpose(-1, -2) @ b - eye) + torch.linalg.norm(a @ a.transpose(-1, -2) - eye)
    return beta * (diag**2).sum() + gamma * orthogonality


def kasa_loss(modules: Any, configs: Mapping[str, Any], adapter_names: Sequence[str]) -> torch.Tensor | float:
    """The sum of `layer_regularization` over every KaSA layer of `adapter_names` (0.0 when there is none)."""
    total: torch.Tensor | float = 0.0
    for module, name, _ in adapter_entries(modules, DIAG, adapter_names):
        settings = configs[name].kasa_config
        total = total + layer_regularization(module, name, settings.beta, settings.gamma)
    return total
