"""Initialisations of LoRA's A and B (`init_lora_weights`), Hugging Face PEFT's semantics.

- True: A Kaiming-uniform (a = sqrt 5, as nn.Linear), B = 0, so the adapter starts as a no-op.
- "gaussian": A ~ N(0, 1/r), B = 0.
- False: both random (not a no-op; for tests and debugging).
- "pissa" / "pissa_niter_<k>": A, B from the top-r singular triplets of W; W keeps the residual.
- "olora": A, B from a QR decomposition of W; W keeps the residual.
- "orthogonal": A, B orthogonal random (r even); the base is left alone.
- "mica": B from the r *smallest* singular directions of W, A = 0, B frozen.

PiSSA and OLoRA change the base weights so that `W_residual + s·B·A == W` at the start. Functions
here take plain tensors in the (out, in) layout and return new tensors; the layers do the
bookkeeping (transposes for GPT-2's Conv1D, dtype, meta tensors).
"""

from __future__ import annotations

import math

import torch
from peft_core.tuners.construction import init_module


def kaiming_bound(fan_in: int) -> float:
    """The bound of `torch.nn.init.kaiming_uniform_(w, a=sqrt(5))` for a fan-in of `fan_in`, computed
    with the same float operations (so the same draws give the same values)."""
    bound = _KAIMING_BOUNDS.get(fan_in)
    if bound is None:
        gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))  # calculate_gain("leaky_relu", sqrt(5))
        std = gain / math.sqrt(fan_in)
        bound = _KAIMING_BOUNDS[fan_in] = math.sqrt(3.0) * std
    return bound


_KAIMING_BOUNDS: dict[int, float] = {}


def kaiming_uniform_(weight: torch.Tensor) -> None:
    """`torch.nn.init.kaiming_uniform_(weight, a=sqrt(5))` (nn.Linear's init): the same draws from the
    default generator and the same values, without its per-call overhead (a few µs instead of ~15 µs)."""
    if weight.is_meta:  # nothing to draw (torch draws nothing on the meta device either)
        return
    if weight.dim() != 2 or 0 in weight.shape:
        torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        return
    bound = kaiming_bound(weight.shape[1])
    with torch.no_grad():
        weight.uniform_(-bound, bound)


def _plain_parameter_registration() -> bool:
    """Whether `register_parameter` would only store the parameter: torch's own (not patched, as
    accelerate's `init_empty_weights` does) and no global parameter registration hooks."""
    fn = torch.nn.Module.register_parameter
    return (
        getattr(fn, "__module__", None) == "torch.nn.modules.module"
        and getattr(fn, "__qualname__", None) == "Module.register_parameter"
        and not torch.nn.modules.module._global_parameter_registration_hooks
    )


def new_linear(in_features: int, out_features: int, bias: bool, draw: bool = True) -> torch.nn.Linear:
    """`nn.Linear(in_features, out_features, bias)`: the same class, parameters, device and dtype
    defaults and the same draws from the default generator (`reset_parameters`), at a third of the
    cost. LoRA creates two per targeted layer. Parameters go through `register_parameter` whenever it
    is patched or hooked (accelerate's `init_empty_weights` puts them on the meta device).
    `draw=False` leaves the parameters uninitialised (the caller draws; see default_lora_factors)."""
    layer = torch.nn.Linear.__new__(torch.nn.Linear)
    init_module(layer)
    layer.__dict__["in_features"] = in_features
    layer.__dict__["out_features"] = out_features
    weight = torch.nn.Parameter(torch.empty((out_features, in_features)))
    bias_param = torch.nn.Parameter(torch.empty(out_features)) if bias else None
    if _plain_parameter_registration():
        layer._parameters["weight"] = weight
        layer._parameters["bias"] = bias_param
    else:  # register_parameter is patched (accelerate's init_empty_weights) or hooked: go through it
        layer.register_parameter("weight", weight)
        layer.register_parameter("bias", bias_param)
        weight = layer.weight
    if not draw:
        return layer
    kaiming_uniform_(weight)
    if bias:
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0
        with torch.no_grad():
            layer.bias.uniform_(-bound, bound)
    return layer


def default_lora_factors(in_features: int, r: int, out_features: int, bias: bool) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """LoRA's default factors (A: Kaiming-uniform, B: zeros) with Hugging Face PEFT's values and its
    use of the default generator: HF builds `nn.Linear(in, r)` and `nn.Linear(r, out[, bias])`, each
    drawing its own init, then draws A again and zeroes B. Only the last draw survives, so when
    every draw is a float32 CPU `uniform_` (one 32-bit generator output per element, in order; only
    the bounds differ) one `uniform_` over all of them with A's bound, of which A keeps the tail,
    gives the same A and leaves the generator in the same state, in one call instead of three."""
    lora_a = new_linear(in_features, r, bias=False, draw=False)
    lora_b = new_linear(r, out_features, bias=bias, draw=False)
    weight_a, weight_b, bias_b = lora_a.weight, lora_b.weight, lora_b.bias
    if weight_a.is_meta:
        return lora_a, lora_b
    tensors = (weight_a, weight_b) if bias_b is None else (weight_a, weight_b, bias_b)
    if in_features > 0 and r > 0 and all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors):
        n_a = weight_a.numel()
        total = 2 * n_a + weight_b.numel() + (0 if bias_b is None else bias_b.numel())
        bound = kaiming_bound(in_features)
        draws = torch.empty(total, dtype=torch.float32).uniform_(-bound, bound)
        weight_a.data.copy_(draws[total - n_a :].view(weight_a.shape))
    else:  # what HF does, draw by draw
        kaiming_uniform_(weight_a)
        kaiming_uniform_(weight_b)
        if bias_b is not None:
            with torch.no_grad():
                bias_b.uniform_(-1 / math.sqrt(r), 1 / math.sqrt(r))
        kaiming_uniform_(weight_a)
    weight_b.data.zero_()
    if bias_b is not None:
        bias_b.data.zero_()
    return lora_a, lora_b


def gaussian_(weight: torch.Tensor, r: int) -> None:
    torch.nn.init.normal_(weight, std=1 / r)


def _check_float(weight: torch.Tensor, what: str) -> None:
    if weight.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(
            f"{what} initialisation needs a float32, float16 or bfloat16 base weight, got {weight.dtype}. "
            f"Initialise on an unquantised model, then quantise the residual model."
        )


@torch.no_grad()
def pissa(
    weight: torch.Tensor, r: int, scaling: float, variant: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A [r,in], B [out,r], residual W [out,in]) with `residual + scaling·B@A == weight` (fp32 math)."""
    _check_float(weight, "PiSSA")
    dtype = weight.dtype
    w = weight.to(torch.float32)
    if variant == "pissa":
        v, s, uh = torch.linalg.svd(w, full_matrices=False)
        vr, sr, uhr = v[:, :r], s[:r], uh[:r]
    else:
        niter = int(variant.split("_niter_")[-1])
        vr, sr, ur = torch.svd_lowrank(w, r, niter=niter)
        uhr = ur.t()
    sr = sr / scaling
    lora_a = torch.diag(torch.sqrt(sr)) @ uhr
    lora_b = vr @ torch.diag(torch.sqrt(sr))
    residual = (w - scaling * lora_b @ lora_a).to(dtype)
    return lora_a, lora_b, residual


@torch.no_grad()
def olora(weight: torch.Tensor, r: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A [r,in], B [out,r], residual W) from the QR decomposition W = QR: B = Q[:, :r], A = R[:r]."""
    _check_float(weight, "OLoRA")
    dtype = weight.dtype
    w = weight.to(torch.float32)
    q, rr = torch.linalg.qr(w)
    lora_b, lora_a = q[:, :r].contiguous(), rr[:r].contiguous()
    residual = (w - scaling * lora_b @ lora_a).to(dtype)
    return lora_a, lora_b, residual


@torch.no_grad()
def orthogonal(r: int, in_features: int, out_features: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A [r,in] and B [out,r] with orthogonal structure (rows of one random orthogonal matrix split in two)."""
    if r % 2 != 0:
        raise ValueError(f"Orthogonal initialization requires the LoRA rank to be even, got {r} instead.")
    q, _ = torch.linalg.qr(torch.randn(r, r))
    q_odd, q_even = q[0::2, :], q[1::2, :]
    lora_a = torch.randn(in_features, r // 2).mm(q_odd).T / 10.0
    lora_b = torch.randn(r // 2, out_features).T.mm(q_even) / 10.0
    return lora_a.contiguous().to(dtype), lora_b.contiguous().to(dtype)


@torch.no_grad()
def mica(weight: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A = 0 [r,in], B = the r left singular vectors of W [out,in] with the smallest singular values."""
    _check_float(weight, "MiCA")
    w = weight.to(torch.float32)
    if r > min(w.shape):
        raise ValueError(
            f"MiCA requires r <= min(in_features, out_features) but got r={r} for a weight of shape "
            f"{tuple(w.shape)} (max usable r is {min(w.shape)})."
        )
    u, _, _ = torch.linalg.svd(w, full_matrices=False)
    lora_b = u[:, -r:].contiguous().to(weight.dtype)
    lora_a = torch.zeros(r, w.shape[1], device=w.device, dtype=weight.dtype)
    return lora_a, lora_b
