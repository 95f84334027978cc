"""Checks of dtypes and devices: half-precision bases keep fp32 adapters (autocast_adapter_dtype),
and `.to()` moves adapters with the model (new adapters follow the base's device and dtype)."""

from __future__ import annotations

import torch

from .declare import Case
from .harness import OTHER, CheckFailed, Context, adapted, assert_close, config_for, load_target_config, quiet, run


def _cast_inputs(case: Case, dtype: torch.dtype, device: torch.device | str = "cpu") -> dict:
    return {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) if torch.is_tensor(v) else v
        for k, v in case.model.make_inputs().items()
    }


def _adapter_params(model, adapter_name: str = "default", copies: bool = True) -> dict[str, torch.Tensor]:
    """Tensors of one adapter; `copies=False` leaves out modules_to_save copies (they keep the base's
    dtype, as in Hugging Face PEFT: autocast_adapter_dtype applies to adapter layers)."""
    return {
        n: p for n, p in model.named_parameters()
        if adapter_name in n.split(".") and (copies or "modules_to_save" not in n.split("."))
    }


def _layer_params(model, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """Tensors of one adapter held by adapter layers (`BaseTunerLayer`)."""
    from .harness import tuner_layers

    return {f"{type(layer).__name__}#{i}": p for layer in tuner_layers(model) for i, p in enumerate(layer.adapter_parameters(adapter_name))}


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double().cpu()
    return float((actual.double().cpu() - expected).norm() / max(1e-12, float(expected.norm())))


def check_dtypes(ctx: Context, case: Case) -> None:
    """On a bf16 base: adapters are fp32 by default (bf16 where the method declares `autocast=False`)
    and bf16 with autocast_adapter_dtype=False; the forward matches the fp32 model's to bf16 precision."""
    from ..mapping import get_peft_model
    from ..state_dict import get_peft_model_state_dict, set_peft_model_state_dict
    from .models import output_of

    reference = adapted(ctx.suite, case)
    expected = run(reference, case)
    # the adapter may lose no more precision than the base model itself does in bf16
    with torch.no_grad():
        base_bf16 = output_of(quiet(lambda: case.model.build().to(torch.bfloat16)(**_cast_inputs(case, torch.bfloat16))))
    base_error = _relative_error(base_bf16, run(case.model.build(), case))
    allowed = max(0.05, 3 * base_error)
    state = get_peft_model_state_dict(reference)
    config = load_target_config(case)
    autocast_dtype = torch.float32 if ctx.suite.autocast else torch.bfloat16
    for autocast, want in ((True, autocast_dtype), (False, torch.bfloat16)):
        base = case.model.build().to(torch.bfloat16)
        model = quiet(lambda b=base, a=autocast: get_peft_model(b, config, autocast_adapter_dtype=a)).eval()
        # autocast: every adapter tensor is fp32; without it, adapter layers follow the base's dtype (prompt
        # encoders are made in fp32 either way, as in Hugging Face PEFT)
        params = _adapter_params(model, copies=False) if autocast else _layer_params(model)
        wrong = sorted(n for n, p in params.items() if p.is_floating_point() and p.dtype != want)
        if wrong:
            raise CheckFailed(f"on a bf16 base with autocast_adapter_dtype={autocast}, adapter tensors {wrong[:3]} are not {want}")
        quiet(lambda m=model: set_peft_model_state_dict(m, state))
        with torch.no_grad():
            out = output_of(quiet(lambda m=model: m(**_cast_inputs(case, torch.bfloat16))))
        if not torch.isfinite(out).all():
            raise CheckFailed(f"the bf16 forward (autocast_adapter_dtype={autocast}) produced non-finite values")
        error = _relative_error(out, expected)
        if error > allowed:
            raise CheckFailed(
                f"the bf16 forward (autocast_adapter_dtype={autocast}) is {error:.3f} away (relative) from the fp32 one "
                f"(the base model alone: {base_error:.3f}; allowed: {allowed:.3f})"
            )


def check_to(ctx: Context, case: Case) -> None:
    """`.to(float64)` (and to CUDA where present) moves the adapter too; outputs agree; a new adapter
    follows the model's dtype and device."""
    model = adapted(ctx.suite, case)
    expected = run(model, case)
    targets: list[tuple[str, torch.device]] = [("cpu", torch.device("cpu"))]
    if torch.cuda.is_available():
        targets.append(("cuda", torch.device("cuda")))
    for label, device in targets:
        moved = quiet(lambda d=device: model.to(device=d, dtype=torch.float64))
        strays = sorted(
            n for n, t in [*moved.named_parameters(), *moved.named_buffers()]
            if t.device.type != device.type or (t.is_floating_point() and t.dtype != torch.float64)
        )
        if strays:
            raise CheckFailed(f".to({label}, float64) left tensors behind: {strays[:5]}")
        with torch.no_grad():
            from .models import output_of

            out = output_of(quiet(lambda m=moved, d=device: m(**_cast_inputs(case, torch.float64, d))))
        assert_close(out.cpu(), expected, case, f"output after .to({label}, float64)", loosen=10.0)
        quiet(lambda m=moved: m.add_adapter(OTHER, config_for(ctx.suite, case, second=True)))
        strays = sorted(n for n, p in _adapter_params(moved, OTHER).items() if p.device.type != device.type)
        strays += sorted(n for n, p in _layer_params(moved, OTHER).items() if p.is_floating_point() and p.dtype != torch.float64)
        if strays:
            raise CheckFailed(f"an adapter added after .to({label}, float64) is not on that device/dtype: {strays[:5]}")
        quiet(lambda m=moved: m.delete_adapter(OTHER))
        model = moved.to(device="cpu", dtype=torch.float32)
