"""CorDA (arXiv 2406.05223): decompose each weight with the covariance of its inputs on your data.

    preprocess_corda(model, config, run_model=lambda: ...)   # runs the model on samples, builds the SVDs
    model = get_peft_model(model, config)                   # config.init_lora_weights = "corda"

For a layer with weight `W` and input covariance `C`, the SVD of `W·C` (damped until `C` inverts well)
gives `U, S, Vᵀ`; with `V' = (Vᵀ C⁻¹)ᵀ`, `W = U S V'ᵀ`. "ipm" (instruction-previewed) keeps the top r
triplets in the adapter, "kpm" (knowledge-preserved) the bottom r; the base keeps `W − s·B@A` with
`A = √(S/s)·V'ᵀ`, `B = U·√(S/s)`. Hugging Face PEFT 0.21.2's steps (no randomness: identical results).
The adapter fits the residual base; save with `path_initial_model_for_weight_conversion` for a LoRA on
the original weights. `CordaConfig.cache_file` / `covariance_file` cache the two expensive steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from peft_core import pattern_value
from peft_core.errors import ConfigError
from torch import nn

from .targets import linear_targets, resolve_targets, weight_out_in

EIGENS = "eigens"


@dataclass
class CordaEigens:
    S_WC: torch.Tensor
    U_WC: torch.Tensor
    V_WC: torch.Tensor


@torch.no_grad()
def preprocess_corda(
    model: nn.Module,
    lora_config: Any,
    run_model: Callable[[], None] | None = None,
    hooked_model: nn.Module | None = None,
) -> None:
    """Attach `eigens` (the cropped SVD) to every targeted linear layer; see the module docstring.

    `run_model()` runs the model on calibration samples (`hooked_model`, if given, is run instead and
    its covariances used); it may be None when the cache or covariance file already exists."""
    config = lora_config.corda_config
    if config is None:
        raise ConfigError("CorDA needs LoraConfig(init_lora_weights='corda', corda_config=CordaConfig(...)).")
    resolve_targets(model, lora_config, "preprocess_corda")
    targets = list(linear_targets(model, lora_config))
    if not targets:
        raise ConfigError("CorDA found no nn.Linear / Conv1D layer among target_modules.")
    device = next(model.parameters()).device
    if config.cache_file and os.path.exists(config.cache_file) and os.path.getsize(config.cache_file) > 0:
        cache = torch.load(config.cache_file, map_location=device, weights_only=True)
        for name, module in targets:
            setattr(module, EIGENS, CordaEigens(*(cache[f"{name}.eigens.{k}"] for k in ("S_WC", "U_WC", "V_WC"))))
        return
    covariances = _covariances(model, lora_config, targets, run_model, hooked_model, device)
    for name, module in targets:
        rank = pattern_value(lora_config.rank_pattern, name, lora_config.r)
        eigens = _eigens(weight_out_in(module), covariances[name])
        setattr(module, EIGENS, _crop(eigens, rank, config.corda_method, device))
    if config.cache_file:
        os.makedirs(os.path.dirname(os.path.abspath(config.cache_file)), exist_ok=True)
        cache = {}
        for name, module in targets:
            eigens = getattr(module, EIGENS)
            cache.update({f"{name}.eigens.S_WC": eigens.S_WC, f"{name}.eigens.U_WC": eigens.U_WC, f"{name}.eigens.V_WC": eigens.V_WC})
        torch.save(cache, config.cache_file)


def _covariances(
    model: nn.Module,
    lora_config: Any,
    targets: list[tuple[str, nn.Module]],
    run_model: Callable[[], None] | None,
    hooked_model: nn.Module | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    config = lora_config.corda_config
    path = config.covariance_file
    if path and os.path.exists(path) and os.path.getsize(path) > 0:
        return torch.load(path, map_location=device, weights_only=True)
    if run_model is None:
        raise ConfigError("preprocess_corda needs run_model (no cache_file or covariance_file to read).")
    hooked = hooked_model if hooked_model is not None else model
    hooked.eval()
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            x = inputs[0].detach().squeeze(0)
            if not config.use_float16_for_covariance:
                x = x.float()
            x = x / torch.max(x).abs()
            if not torch.isfinite(x).all():
                raise ValueError(f"CorDA: the inputs of {name!r} hold NaN/inf; check the calibration data.")
            sums[name] = sums.get(name, 0) + x.t().matmul(x)
            counts[name] = counts.get(name, 0) + 1

        return hook

    wanted = {name for name, _ in targets}
    handles = [m.register_forward_hook(hook_for(n)) for n, m in linear_targets(hooked, lora_config) if n in wanted]
    try:
        run_model()
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(wanted - set(counts))
    if missing:
        raise ConfigError(f"CorDA: run_model() never ran the targeted layers {missing[:3]}; no covariance for them.")
    covariances = {name: sums[name] / counts[name] for name in wanted}
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        torch.save(covariances, path)
    return covariances


def _eigens(weight: torch.Tensor, covariance: torch.Tensor) -> CordaEigens:
    w = weight.data.float()
    cov = covariance.float()
    identity = torch.eye(cov.size(0), device=cov.device)
    damp = 0.01
    while True:
        fixed = cov + torch.diag(torch.ones(cov.size(0), device=cov.device) * torch.mean(torch.diag(cov)) * damp)
        inverse = torch.linalg.inv(fixed)
        if torch.dist(fixed @ inverse, identity).item() < 0.05:
            break
        damp *= 2
    u, s, vh = torch.linalg.svd(w @ fixed, full_matrices=False)
    v = (vh @ inverse).transpose(0, 1)
    return CordaEigens(S_WC=s, U_WC=u.cpu(), V_WC=v.cpu())


def _crop(eigens: CordaEigens, rank: int, method: str, device: torch.device) -> CordaEigens:
    part = slice(None, rank) if method == "ipm" else slice(-rank, None)
    return CordaEigens(
        S_WC=eigens.S_WC[part].clone(),
        U_WC=eigens.U_WC[:, part].clone().to(device),
        V_WC=eigens.V_WC[:, part].clone().to(device),
    )


@torch.no_grad()
def corda_factors(
    weight: torch.Tensor, eigens: CordaEigens, r: int, scaling: float, key: str = ""
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A [r,in], B [out,r], residual weight) from the layer's eigens; all in the (out, in) layout."""
    if weight.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ConfigError(
            f"CorDA initialises float32/float16/bfloat16 weights, got {weight.dtype} for {key!r}; initialise the "
            f"unquantized model, then quantize the residual."
        )
    u, s, v = eigens.U_WC, eigens.S_WC, eigens.V_WC
    out_dim, in_dim = weight.shape
    for what, tensor in (("S", s), ("U", u), ("V", v)):
        if not torch.isfinite(tensor).all():
            raise ValueError(f"CorDA: matrix {what} of {key!r} holds NaN/inf.")
    if u.shape != (out_dim, r) or s.shape != (r,) or v.shape != (in_dim, r):
        raise ConfigError(
            f"CorDA eigens of {key!r} have shapes U {tuple(u.shape)}, S {tuple(s.shape)}, V {tuple(v.shape)}, but the "
            f"layer needs rank {r} for a {out_dim}x{in_dim} weight; run preprocess_corda with the same model and config "
            f"(or rebuild the cache)."
        )
    s = s / scaling
    lora_a = v.t().mul(s.sqrt().view(-1, 1)).contiguous()
    lora_b = u.mul(s.sqrt()).contiguous()
    residual = (weight.to(torch.float32) - scaling * lora_b @ lora_a).to(weight.dtype)
    return lora_a, lora_b, residual
