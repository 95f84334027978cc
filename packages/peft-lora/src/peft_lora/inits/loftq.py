"""LoftQ (arXiv 2310.08659): quantize the base weight and start LoRA from the SVD of the quantization error.

Two ways, as in Hugging Face PEFT 0.21.2:

- `LoraConfig(init_lora_weights="loftq", loftq_config=LoftQConfig(loftq_bits=4, loftq_iter=1))` on the
  unquantized model: for `loftq_iter` rounds, quantize the residual target (NF4 or int8, with
  bitsandbytes), take `R = W − dequant(Q)` and its top-r SVD `L·R`; the base weight becomes
  `dequant(Q)` (quantize the saved residual model afterwards), `A = R`, `B = L`. As in HF, no
  `lora_alpha / r` scaling is folded in (use `lora_alpha = r`).
- `replace_lora_weights_loftq(peft_model, model_path=...)` on a model already loaded in 4 bits: reads
  each adapted layer's original weight from the safetensors checkpoint and sets A, B from the SVD of
  the error against the quantized weight (one round); an optional `callback(model, name) -> bool`
  keeps or rolls back each replacement.

Needs bitsandbytes (`pip install peft-lora[bnb]`). Unlike Hugging Face PEFT (which runs on CUDA/XPU
only), the quantization runs on the weight's device, CPU included.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from peft_core.errors import ConfigError
from torch import nn


def _bnb() -> Any:
    try:
        import bitsandbytes
    except ImportError as exc:
        raise ConfigError(
            "LoftQ quantizes with bitsandbytes, which is not installed: pip install 'peft-lora[bnb]'."
        ) from exc
    return bitsandbytes


def _quantize_dequantize(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """`dequant(quant(weight))` with bitsandbytes NF4 (blocks of 64) or int8 (per row)."""
    bnb = _bnb()
    functional = bnb.functional
    if bits == 4:
        packed, state = functional.quantize_4bit(weight, blocksize=64, compress_statistics=False, quant_type="nf4")
        return functional.dequantize_4bit(packed, state).to(weight.dtype)
    quantized, scales, _ = functional.int8_vectorwise_quant(weight.to(torch.float16))
    return functional.int8_vectorwise_dequant(quantized, scales).to(weight.dtype)


def _low_rank(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(L [out, rank], R [rank, in]) with L@R the best rank-`rank` approximation of `weight`."""
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    return u @ torch.sqrt(torch.diag(s)[:, :rank]), torch.sqrt(torch.diag(s)[:rank, :]) @ vh


@torch.no_grad()
def loftq_factors(weight: torch.Tensor, bits: int, rank: int, iterations: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A [rank, in], B [out, rank], dequantized base weight), weight in the (out, in) layout."""
    if bits not in (4, 8):
        raise ConfigError(f"LoftQ quantizes to 4 (NF4) or 8 (int8) bits, got {bits}.")
    if iterations <= 0:
        raise ConfigError(f"LoftQ needs at least one iteration, got {iterations}.")
    device, dtype = weight.device, weight.dtype
    target = weight.to(torch.float32)
    residual = target.clone()
    for i in range(iterations):
        dequantized = _quantize_dequantize(residual, bits)
        left, right = _low_rank(target - dequantized, rank)
        if i + 1 < iterations:
            residual = target - left @ right
    return right, left, dequantized.to(device=device, dtype=dtype)


class _CheckpointReader:
    """Tensors of a (possibly sharded) safetensors checkpoint, read one at a time."""

    def __init__(self, model: nn.Module, model_path: str | None) -> None:
        if model_path is None:
            name = getattr(getattr(model, "config", None), "_name_or_path", None)
            if not name:
                raise ConfigError(
                    "replace_lora_weights_loftq: pass model_path (the folder or model.safetensors of the unquantized "
                    "base model); the model does not say where it was loaded from."
                )
            from huggingface_hub import snapshot_download

            try:
                model_path = snapshot_download(name, local_files_only=True)
            except Exception as exc:  # the hub library's errors for a missing local snapshot
                raise ConfigError(
                    f"replace_lora_weights_loftq: no local copy of {name!r} found; pass model_path."
                ) from exc
        path = model_path if model_path.endswith(".safetensors") else os.path.join(model_path, "model.safetensors")
        self.prefix = getattr(model, "base_model_prefix", None)
        self.files: dict[str, str] | None = None
        self.path = path
        if not os.path.exists(path):
            index = os.path.join(os.path.dirname(path), "model.safetensors.index.json")
            if not os.path.exists(index):
                raise ConfigError(f"replace_lora_weights_loftq: neither {path} nor a sharded index ({index}) exists.")
            import json

            with open(index, encoding="utf-8") as fh:
                weight_map = json.load(fh)["weight_map"]
            self.files = {k: os.path.join(os.path.dirname(path), v) for k, v in weight_map.items()}

    def get(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        candidates = [name]
        if self.prefix and name.startswith(self.prefix + "."):
            candidates.append(name[len(self.prefix) + 1 :])
        for candidate in candidates:
            path = self.files.get(candidate) if self.files is not None else self.path
            if path is None:
                continue
            with safe_open(path, framework="pt", device="cpu") as fh:
                if candidate in fh.keys():
                    return fh.get_tensor(candidate)
        raise ConfigError(f"replace_lora_weights_loftq: the checkpoint has no tensor {name!r}.")


@torch.no_grad()
def replace_lora_weights_loftq(
    peft_model: nn.Module,
    model_path: str | None = None,
    adapter_name: str = "default",
    callback: Callable[[nn.Module, str], bool] | None = None,
) -> None:
    """Set the LoRA factors of every 4-bit bitsandbytes LoRA layer from the LoftQ error decomposition."""
    bnb = _bnb()
    from ..layers.base import LoraLayer

    reader = _CheckpointReader(peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model, model_path)
    prefix = "base_model.model."
    found = False
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer) or adapter_name not in module.lora_A:
            continue
        base = module.get_base_layer()
        if not isinstance(base, bnb.nn.Linear4bit):
            continue
        if not name.startswith(prefix):
            raise ConfigError("replace_lora_weights_loftq needs a PeftModel (keys under base_model.model.).")
        found = True
        short = name[len(prefix) :]
        original = reader.get(short + ".weight").to(base.weight.device, torch.float32)
        dequantized = bnb.functional.dequantize_4bit(base.weight.data, base.weight.quant_state).to(torch.float32)
        left, right = _low_rank(original - dequantized, module.r[adapter_name])
        lora_a, lora_b = module.lora_A[adapter_name].weight, module.lora_B[adapter_name].weight
        before = (lora_a.data, lora_b.data)
        lora_a.data = right.to(lora_a.dtype)
        lora_b.data = left.to(lora_b.dtype)
        if callback is not None and not callback(peft_model, short):
            lora_a.data, lora_b.data = before
    if not found:
        raise ConfigError("replace_lora_weights_loftq found no LoRA layer on a bitsandbytes 4-bit Linear4bit.")
