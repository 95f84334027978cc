"""HRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing hra`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Cases cover Linear and Conv2d layers, even and odd `r`, and the
Gram-Schmidt variant (`apply_GS`). An even `r` starts as pairs of identical reflections (a no-op).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import HRAConfig


def _hra(*targets: str, **kwargs):
    return lambda: HRAConfig(target_modules=list(targets), **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="hra",
        cases=(
            Case("mlp", models.MLP, _hra("lin0", "lin1", "lin2", r=2), second=_hra("lin1", r=4, apply_GS=True)),
            Case("mlp-modules-to-save", models.MLP, _hra("lin0", r=4, modules_to_save=["lin2"])),
            Case("conv", models.CONV, _hra("conv2d", "pointwise", "head", r=4), second=_hra("conv2d", r=2, apply_GS=True)),
            Case("llama", models.LLAMA, _hra("q_proj", "v_proj", "down_proj", r=2, task_type="CAUSAL_LM"),
                 second=_hra("o_proj", r=4, apply_GS=True, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"target_modules": ".*q", "layers_to_transform": 0},
            {"target_modules": ".*q", "layers_pattern": "layers"},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
        ),
    )
