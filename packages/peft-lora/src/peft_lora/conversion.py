"""Convert an adapter of another method to LoRA (Hugging Face PEFT's `convert_to_lora` / `save_as_lora`).

For servers that only serve LoRA (vLLM, ...): every layer holding the adapter must declare that its
effect is a weight delta (`BaseTunerLayer.supports_delta_weight`: LoHa, LoKr, VeRA, FourierFT, MiSS,
plain LoRA, ...) on a Linear or GPT-2 `Conv1D`; its `ΔW` is replaced by the rank-r truncated SVD
`B @ A` (`B = U_r·S_r`, `A = V_rᵀ`, scaling 1: `lora_alpha = r`). Methods that rotate or rescale the
weight (OFT, BOFT, HRA, IA3), prompt learning, DoRA and convolution layers are refused with a
`LoraConversionError`. The relative error `‖ΔW − BA‖_F / ‖ΔW‖_F` of each layer, known from the
discarded singular values, comes back in a `ConversionReport`.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from peft_core import BaseTunerLayer, ModulesToSaveWrapper, PeftError
from peft_core.serialization import WriteBatch, save_weights
from peft_core.state_dict import adapter_layers
from torch import nn

from .config import LoraConfig
from .layers import is_transformers_conv1d

__all__ = ["ConversionReport", "LoraConversion", "LoraConversionError", "ModuleConversion", "convert_to_lora", "save_as_lora"]

_PEFT_PREFIX = "base_model.model."


class LoraConversionError(PeftError, TypeError, ValueError):
    """The adapter can't be converted to LoRA (not a weight delta, unsupported layer, bad rank, bias mode)."""


@dataclass(frozen=True)
class ModuleConversion:
    """One converted layer: the LoRA rank it got and the relative error `‖ΔW − BA‖_F / ‖ΔW‖_F` (0 = exact)."""

    rank: int
    relative_error: float


@dataclass
class ConversionReport:
    """How closely the LoRA adapter reproduces the original, layer by layer."""

    modules: dict[str, ModuleConversion] = field(default_factory=dict)

    @property
    def max_relative_error(self) -> float:
        return max((m.relative_error for m in self.modules.values()), default=0.0)

    @property
    def mean_relative_error(self) -> float:
        return sum(m.relative_error for m in self.modules.values()) / len(self.modules) if self.modules else 0.0

    def __str__(self) -> str:
        ranks = sorted({m.rank for m in self.modules.values()})
        worst = max(self.modules.items(), key=lambda kv: kv[1].relative_error, default=None)
        where = f" ({worst[0]})" if worst is not None else ""
        return (
            f"{len(self.modules)} layers converted to LoRA, ranks {ranks}; relative error ‖ΔW − BA‖/‖ΔW‖: mean "
            f"{self.mean_relative_error:.3g}, max {self.max_relative_error:.3g}{where}"
        )


class LoraConversion(tuple):
    """`(lora_config, state_dict)`, as Hugging Face PEFT's `convert_to_lora` returns, with `.report`."""

    report: ConversionReport

    def __new__(cls, config: LoraConfig, state_dict: dict[str, torch.Tensor], report: ConversionReport) -> LoraConversion:
        obj = super().__new__(cls, (config, state_dict))
        obj.report = report
        return obj

    @property
    def config(self) -> LoraConfig:
        return self[0]

    @property
    def state_dict(self) -> dict[str, torch.Tensor]:
        return self[1]


def convert_to_lora(
    model: nn.Module,
    rank: int | float,
    adapter_name: str = "default",
    progressbar: bool = False,
    compile_kwargs: dict[str, Any] | None = None,
) -> LoraConversion:
    """Convert adapter `adapter_name` of `model` to a LoRA adapter: `(lora_config, state_dict)`.

    `rank`: an int is the LoRA rank of every layer; a float in (0, 1] is an energy threshold, giving
    each layer the smallest rank whose singular values hold that fraction of `Σ s²`. The state dict
    has the file's keys (`<module>.lora_A.weight`, no adapter name): save it with `save_as_lora`, or
    load it with `set_peft_model_state_dict` into a model made from `lora_config`. The result also
    has `.report` (`ConversionReport`): each layer's rank and relative approximation error.
    `compile_kwargs` compiles the per-layer SVD with `torch.compile(**compile_kwargs)`.
    """
    from tqdm.auto import tqdm

    _check_rank(rank)
    configs = getattr(model, "peft_config", None) or {}
    peft_config = configs.get(adapter_name) if isinstance(configs, dict) else None
    layers = [(key, layer) for key, _, layer in adapter_layers(model) if isinstance(layer, BaseTunerLayer) and layer.has_adapter(adapter_name)]
    _check_convertible(layers, adapter_name, peft_config)
    if peft_config is not None and peft_config.peft_type == "LORA":
        warnings.warn(
            "Converting a LoRA adapter to LoRA; there is typically no need for that.", UserWarning, stacklevel=2
        )

    kwargs: dict[str, Any] = {"rank_pattern": {}, "alpha_pattern": {}, "exclude_modules": set()}
    if peft_config is not None:
        targets = copy.copy(peft_config.target_modules)
        kwargs["target_modules"] = set(targets) if isinstance(targets, (list, tuple, set)) else targets
        kwargs["base_model_name_or_path"] = peft_config.base_model_name_or_path
        kwargs["layers_pattern"] = getattr(peft_config, "layers_pattern", None)
        kwargs["layers_to_transform"] = getattr(peft_config, "layers_to_transform", None)
        kwargs["task_type"] = peft_config.task_type
    else:
        kwargs["target_modules"] = set()
    base_r = rank if isinstance(rank, int) else 1  # float: every layer's rank comes from the patterns
    kwargs["fan_in_fan_out"] = all(is_transformers_conv1d(layer.get_base_layer()) for _, layer in layers)
    lora_config = LoraConfig(r=base_r, lora_alpha=base_r, **kwargs)

    convert: Callable[[torch.Tensor, int | float], tuple[torch.Tensor, torch.Tensor, int, float]] = _low_rank
    if compile_kwargs is not None:
        convert = torch.compile(_low_rank, **compile_kwargs)
    state: dict[str, torch.Tensor] = {}
    report = ConversionReport()
    for key, layer in tqdm(layers, disable=not progressbar, desc="Converting to LoRA"):
        name = key.removeprefix(_PEFT_PREFIX)
        with torch.no_grad():
            delta = layer.get_delta_weight(adapter_name)
            if is_transformers_conv1d(layer.get_base_layer()):
                delta = delta.T  # Conv1D stores (in, out); LoRA's factors are (r, in) and (out, r) either way
            lora_a, lora_b, effective, error = convert(delta.detach(), rank)
        if effective == 0:
            lora_config.exclude_modules.add(name)
            continue
        if effective != rank or isinstance(lora_config.target_modules, str):
            lora_config.rank_pattern[name] = effective
            lora_config.alpha_pattern[name] = effective
        else:
            lora_config.target_modules.add(name)
        state[f"{key}.lora_A.weight"] = lora_a.contiguous()
        state[f"{key}.lora_B.weight"] = lora_b.contiguous()
        report.modules[name] = ModuleConversion(effective, error)
    if not state:
        raise LoraConversionError(f"No layer of adapter {adapter_name!r} was converted; nothing to save.")
    if not lora_config.exclude_modules:
        lora_config.exclude_modules = None

    if peft_config is not None and getattr(peft_config, "modules_to_save", None):
        lora_config.modules_to_save = copy.copy(peft_config.modules_to_save)
        for key, _, module in adapter_layers(model):
            if isinstance(module, ModulesToSaveWrapper) and module.has_adapter(adapter_name):
                for t in module.adapter_tensors(adapter_name):
                    state[f"{key}.{t.saved_key}"] = t.tensor.detach()
    return LoraConversion(lora_config, state, report)


def save_as_lora(
    path: str | os.PathLike,
    model: nn.Module,
    rank: int | float,
    adapter_name: str = "default",
    progressbar: bool = False,
    compile_kwargs: dict[str, Any] | None = None,
) -> ConversionReport:
    """`convert_to_lora`, then write `adapter_model.safetensors` and `adapter_config.json` to `path`
    (together: both files or neither). Returns the `ConversionReport`."""
    result = convert_to_lora(
        model, rank=rank, adapter_name=adapter_name, progressbar=progressbar, compile_kwargs=compile_kwargs
    )
    directory = os.fspath(path)
    os.makedirs(directory, exist_ok=True)
    with WriteBatch() as batch:
        save_weights(result.state_dict, directory, batch=batch)
        result.config.save_pretrained(directory, write_batch=batch)
    return result.report


def _low_rank(delta: torch.Tensor, rank: int | float) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """(A [k, in], B [out, k], k, relative error) of the rank-k truncated SVD of `delta` [out, in]."""
    dtype = delta.dtype
    u, s, vh = torch.linalg.svd(delta.float(), full_matrices=False)
    energy = s.square()
    total = float(energy.sum())
    if isinstance(rank, int):
        k = rank
        if k > s.numel():
            raise LoraConversionError(
                f"rank={k} is larger than a converted layer's delta allows ({tuple(delta.shape)}: at most {s.numel()}); "
                f"choose a lower rank."
            )
    else:
        cumulative = torch.cumsum(energy, dim=0)
        k = int(torch.searchsorted(cumulative, rank * cumulative[-1]).item()) + 1
        k = min(k, s.numel())
    lora_b = (u[:, :k] * s[:k]).to(dtype)
    lora_a = vh[:k].to(dtype)
    discarded = float(energy[k:].sum())
    error = (discarded / total) ** 0.5 if total > 0 else 0.0
    return lora_a, lora_b, k, error


def _check_rank(rank: int | float) -> None:
    if isinstance(rank, bool) or not isinstance(rank, (int, float)):
        raise LoraConversionError(f"rank must be an int (the LoRA rank) or a float threshold in (0, 1], got {rank!r}.")
    if isinstance(rank, float) and not 0 < rank <= 1:
        raise LoraConversionError(
            f"A float rank is an energy threshold (the fraction of Σ s² each layer keeps); it must be in (0, 1], "
            f"got {rank}."
        )
    if isinstance(rank, int) and rank <= 0:
        raise LoraConversionError(f"rank must be a positive integer, got {rank}.")


def _check_convertible(layers: list[tuple[str, BaseTunerLayer]], adapter_name: str, peft_config: Any) -> None:
    if not layers:
        raise LoraConversionError(
            f"The model has no adapter layers holding adapter {adapter_name!r}; nothing to convert "
            f"(prompt-learning adapters have no layers and can't be converted to LoRA)."
        )
    bias = getattr(peft_config, "bias", "none")
    if bias not in (None, "none"):
        raise LoraConversionError(
            f"Adapter {adapter_name!r} trains base biases (bias={bias!r}); a LoRA adapter without them would change the "
            f"outputs. Only adapters with bias='none' can be converted."
        )
    if getattr(peft_config, "kasa_config", None) is not None:
        raise LoraConversionError(
            f"Adapter {adapter_name!r} is a KaSA adapter: it was trained on base weights KaSA truncated, so no LoRA "
            f"on the original base reproduces it (Hugging Face PEFT refuses it too)."
        )
    not_delta = sorted({type(layer).__name__ for _, layer in layers if not layer.supports_delta_weight(adapter_name)})
    if not_delta:
        raise LoraConversionError(
            f"Adapter {adapter_name!r} can't be converted to LoRA: its {', '.join(not_delta)} layers do not change the "
            f"weight by an added matrix ΔW (e.g. rotations (OFT, BOFT, HRA), scalings (IA3), DoRA, lora_bias), so no "
            f"B @ A reproduces them. Convertible: adapters whose layers declare supports_delta_weight (LoRA, LoHa, "
            f"LoKr, VeRA, FourierFT, MiSS, ...)."
        )
    not_matrix = sorted(
        {
            f"{key.removeprefix(_PEFT_PREFIX)} ({type(layer.get_base_layer()).__name__})"
            for key, layer in layers
            if not (isinstance(layer.get_base_layer(), nn.Linear) or is_transformers_conv1d(layer.get_base_layer()))
        }
    )
    if not_matrix:
        raise LoraConversionError(
            f"Only adapters on Linear layers (and transformers' Conv1D) can be converted to LoRA; these are not: "
            f"{', '.join(not_matrix[:5])}{' ...' if len(not_matrix) > 5 else ''}. Exclude them when training the adapter."
        )
