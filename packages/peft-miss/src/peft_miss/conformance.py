"""MiSS's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing miss`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. `conformance()` holds the balanced variant (the default), with `r`
dividing the inputs and not (the padded path). The kit turns `init_weights=False` on for a non-trivial
start, which would replace any other variant, so the `bat` and `mini` variants, which always start
at zero, are a second suite (`variants()`) that the package's tests run with the kit's init check
left out (their zero start is tested there).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import MissConfig

_BAD_VALUES = (
    {"target_modules": ".*q", "layers_to_transform": 0},
    {"target_modules": ".*q", "layers_pattern": "layers"},
    {"init_weights": "pissa"},
    {"bias": "some"},
)


def _miss(*targets: str, **kwargs):
    return lambda: MissConfig(target_modules=list(targets), **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="miss",
        cases=(
            Case("mlp", models.MLP, _miss("lin0", "lin1", "lin2", r=4), second=_miss("lin1", r=8)),
            # 5 divides neither 16 nor 32 inputs: the input is padded to whole shards
            Case("mlp-padded", models.MLP, _miss("lin0", "lin1", r=5, modules_to_save=["lin2"])),
            Case("llama", models.LLAMA, _miss("q_proj", "v_proj", "down_proj", r=4, task_type="CAUSAL_LM"),
                 second=_miss("o_proj", r=8, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=_BAD_VALUES,
    )


def variants() -> Conformance:
    """The `bat` (block-affine transform of the weight) and `mini` (shared `[r, mini_r]` block) variants."""
    return Conformance(
        method="miss",
        cases=(
            # a balanced adapter beside a bat one
            Case("mlp-bat", models.MLP, _miss("lin0", "lin1", "lin2", r=4, init_weights="bat"), second=_miss("lin1", r=4)),
            Case("mlp-mini", models.MLP, _miss("lin0", "lin1", "lin2", r=4, mini_r=2, init_weights="mini")),
            Case("llama-bat", models.LLAMA, _miss("q_proj", "v_proj", "o_proj", r=4, init_weights="bat", task_type="CAUSAL_LM")),
        ),
        random_init={},  # the kit's "as if trained" noise makes them non-trivial
        hf=HuggingFace(),
        bad_values=_BAD_VALUES,
    )
