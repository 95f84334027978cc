"""LoRA-GA (arXiv 2407.05000): start A and B from the singular vectors of the full fine-tuning gradient.

    preprocess_loraga(model, config, train_step)   # estimates dL/dW of every targeted layer on your data
    model = get_peft_model(model, config)          # config.init_lora_weights = "lora_ga"

`train_step()` runs forward and backward passes (gradients accumulate; the estimate is their mean
per backward pass of the layer). From the gradient's top-2r singular triplets `U, S, Vh`, A takes r
right vectors and B r left vectors times their singular values (`LoraGAConfig.direction` says which),
B is rescaled (`scale`), and the base weight keeps `W − s·B@A`, so the model starts where it was. The
adapter then fits that residual base: save it with `path_initial_model_for_weight_conversion` to get a
LoRA for the original weights. The same steps as Hugging Face PEFT 0.21.2 (identical results for the
same seed: `torch.svd_lowrank` draws from the default generator).

Without a gradient (loading a saved adapter) the layer falls back to the default init, as in HF.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from peft_core.errors import ConfigError
from torch import nn

from .configs import LoraGAConfig
from .targets import linear_targets, resolve_targets

GRADIENT = "_peft_loraga_grad"


@torch.no_grad()
def preprocess_loraga(
    model: nn.Module, lora_config: Any, train_step: Callable[[], None], cache_file: str | None = None
) -> None:
    """Attach the estimated gradient of every targeted linear layer's weight (see the module docstring).

    `cache_file` (a `torch.save` file of tensors) is read when it exists, else written after estimating."""
    if lora_config.lora_ga_config is None:
        raise ConfigError(
            "LoRA-GA needs LoraConfig(init_lora_weights='lora_ga', lora_ga_config=LoraGAConfig(...))."
        )
    resolve_targets(model, lora_config, "preprocess_loraga")
    targets = list(linear_targets(model, lora_config))
    if not targets:
        raise ConfigError("LoRA-GA found no nn.Linear / Conv1D layer among target_modules.")
    for name, module in targets:
        if getattr(module, "quant_state", None) is not None or not module.weight.is_floating_point():
            raise ConfigError(
                f"LoRA-GA needs full-precision gradients, but {name!r} is quantized; preprocess the unquantized model."
            )
    if cache_file is not None and os.path.exists(cache_file) and os.path.getsize(cache_file) > 0:
        device = next(model.parameters()).device
        cache = torch.load(cache_file, map_location=device, weights_only=True)
        for name, module in targets:
            setattr(module, GRADIENT, cache[f"{name}.{GRADIENT}"])
        return
    _estimate_gradients(model, targets, train_step)
    if cache_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(cache_file)), exist_ok=True)
        torch.save({f"{name}.{GRADIENT}": getattr(module, GRADIENT) for name, module in targets}, cache_file)


def _estimate_gradients(model: nn.Module, targets: list[tuple[str, nn.Module]], train_step: Callable[[], None]) -> None:
    was_training = model.training
    model.train()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    counts = {id(m): 0 for _, m in targets}
    for param, _ in flags:
        param.requires_grad_(False)
    for _, module in targets:
        module.weight.requires_grad_(True)
        module.weight.grad = None

    def count(module: nn.Module, grad_input: Any, grad_output: Any) -> None:
        counts[id(module)] += 1

    hooks = [module.register_full_backward_hook(count) for _, module in targets]
    try:
        with torch.enable_grad():
            train_step()
    finally:
        for hook in hooks:
            hook.remove()
        for param, flag in flags:
            param.requires_grad_(flag)
        model.train(was_training)
    for name, module in targets:
        if counts[id(module)] == 0 or module.weight.grad is None:
            raise ConfigError(f"LoRA-GA: train_step() ran no backward pass through {name!r}; nothing to estimate.")
        setattr(module, GRADIENT, module.weight.grad.detach() / counts[id(module)])
        module.weight.grad = None


@torch.no_grad()
def lora_ga_factors(
    weight: torch.Tensor, gradient: torch.Tensor, r: int, scaling: float, config: LoraGAConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A [r,in], B [out,r], residual weight) from the gradient; all in the (out, in) layout."""
    dtype = weight.dtype
    grad = gradient.to(torch.float32)
    u, s, v = torch.svd_lowrank(grad, q=min(4 * r, min(grad.shape)), niter=4)
    vh = v.t()
    u, s, vh = u[:, : 2 * r], s[: 2 * r], vh[: 2 * r, :]
    if config.direction == "ArBr":
        lora_a, b_index = vh[1 : 2 * r : 2, :], slice(0, 2 * r, 2)
    elif config.direction == "A2rBr":
        lora_a, b_index = vh[r : 2 * r, :], slice(0, r)
    elif config.direction == "ArB2r":
        lora_a, b_index = vh[:r, :], slice(r, 2 * r)
    else:  # random
        indices = torch.randperm(2 * r)[:r]
        lora_a, b_index = vh[indices, :], indices
    s_b = s[b_index]
    lora_b = u[:, b_index] @ torch.diag(s_b)
    if config.scale == "stable":
        lora_b = lora_b * ((weight.shape[0] ** 0.25) / (config.stable_gamma**0.5))
    elif config.scale == "weight_svd":
        _, weight_s, _ = torch.svd_lowrank(weight.to(torch.float32), q=r, niter=4)
        if s_b[0] > 0:
            lora_b = lora_b * (weight_s[0] / s_b[0])
    elif config.scale == "gd_scale":
        lora_a, lora_b = lora_a / scaling, lora_b / scaling
    lora_a, lora_b = lora_a.to(dtype).contiguous(), lora_b.to(dtype).contiguous()
    residual = (weight.to(torch.float32) - scaling * (lora_b.float() @ lora_a.float())).to(dtype)
    return lora_a, lora_b, residual
