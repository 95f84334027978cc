"""LoRA on torchao weight-quantized linears (`quantize_(model, Int8WeightOnlyConfig())`, or transformers'
`TorchAoConfig`). Imported only when a model holds a torchao tensor (needs `peft-lora[torchao]`).

The layer stays an `nn.Linear` whose weight is a torchao tensor subclass; the forward pass is plain
LoRA's (Hugging Face PEFT's `TorchaoLoraLinear` is its `Linear`). Merging dequantizes, adds the delta
and runs `quantize_` on the layer again with the configuration the weight was made with: for int8
weight-only tensors it is read back from the tensor (per-row or per-group scales); other torchao
tensors train and run, and refuse to merge with a clear error.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchao.utils import TorchAOBaseTensor

from .base import QuantizedLinear


class TorchaoLinear(QuantizedLinear):
    backend = "torchao"
    supports_lora_bias = False

    def dequantize_weight(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        try:
            return weight.dequantize()
        except NotImplementedError as exc:
            raise NotImplementedError(
                f"torchao weights of type {type(weight).__name__} can't be dequantized, which DoRA and merging need."
            ) from exc

    def requantize_weight(self, weight: torch.Tensor) -> None:
        from torchao.quantization import quantize_

        base = self.get_base_layer()
        old = base.weight
        config = requantize_config(old)
        base.weight = nn.Parameter(weight.to(old.dtype), requires_grad=False)
        quantize_(base, config)
        new_blocks = list(getattr(base.weight, "block_size", []))
        if new_blocks != list(getattr(old, "block_size", [])):
            base.weight = old
            raise RuntimeError(
                f"Requantizing the torchao weight gave block size {new_blocks}, not the original "
                f"{list(getattr(old, 'block_size', []))}; the layer was left unchanged."
            )

    def _add_delta(self, weight: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return weight.add_(delta.to(weight.dtype))  # the dequantized copy is ours (HF adds in place too)


def requantize_config(weight: torch.Tensor) -> Any:
    """The torchao config that quantizes a float weight into a tensor like `weight`."""
    from torchao.quantization import Int8Tensor, Int8WeightOnlyConfig
    from torchao.quantization.granularity import PerGroup, PerRow

    if isinstance(weight, Int8Tensor) and getattr(weight, "act_quant_kwargs", None) is None:
        blocks = list(weight.block_size)
        if len(blocks) == 2 and blocks[0] == 1:
            in_features = weight.shape[-1]
            granularity = PerRow() if blocks[1] == in_features else PerGroup(blocks[1])
            return Int8WeightOnlyConfig(granularity=granularity)
    raise NotImplementedError(
        f"Merging into torchao weights of type {type(weight).__name__} is not supported (only int8 weight-only "
        f"tensors are requantized); train and run the adapter unmerged, or merge on an unquantized copy of the model."
    )


def dispatch(module: nn.Module) -> type[QuantizedLinear] | None:
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Linear) and isinstance(weight, TorchAOBaseTensor):
        return TorchaoLinear
    return None
