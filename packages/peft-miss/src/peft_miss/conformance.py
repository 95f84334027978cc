"""MiSS's cases for peft-core's conformance kit (`python -m peft_core.testing miss`); `variants()` covers the
`bat` and `mini` variants."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import MissConfig

_BAD_VALUES = (
    {"target_modules": ".*q", "layers_to_transform": 0},
    {"target_modules": ".*q", "layers_pattern": "layers"},
    {"init_weights": "pissa"},
    {"bias": "some"},
)


def conformance() -> Conformance:
    return Conformance.of(
        MissConfig,
        on(models.MLP, r=4, second=dict(target_modules=["lin1"], r=8)),
        # 5 divides neither 16 nor 32 inputs: the input is padded to whole shards
        on(models.MLP, "mlp-padded", target_modules=["lin0", "lin1"], r=5, modules_to_save=["lin2"]),
        on(models.LLAMA, r=4, second=dict(target_modules=["o_proj"], r=8)),
        random_init={"init_weights": False},
        hf=True,
        bad_values=_BAD_VALUES,
    )


def variants() -> Conformance:
    """The `bat` (block-affine transform of the weight) and `mini` (shared `[r, mini_r]` block) variants."""
    return Conformance.of(
        MissConfig,
        on(models.MLP, "mlp-bat", r=4, init_weights="bat", second=dict(target_modules=["lin1"], r=4)),  # beside a balanced one
        on(models.MLP, "mlp-mini", r=4, mini_r=2, init_weights="mini"),
        on(models.LLAMA, "llama-bat", target_modules=["q_proj", "v_proj", "o_proj"], r=4, init_weights="bat"),
        random_init={},  # the kit's "as if trained" noise makes them non-trivial
        hf=True,
        bad_values=_BAD_VALUES,
    )
