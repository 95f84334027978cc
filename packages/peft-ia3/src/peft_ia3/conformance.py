"""(IA)³'s conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing ia3`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Custom models name their feed-forward layers (`feedforward_modules`);
transformers models use the per-architecture defaults.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import IA3Config


def conformance() -> Conformance:
    return Conformance(
        method="ia3",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: IA3Config(target_modules=["lin0", "lin1", "lin2"], feedforward_modules=["lin1"]),
                second=lambda: IA3Config(target_modules=["lin1", "lin2"], feedforward_modules=["lin1"]),
                bad_values=({"feedforward_modules": ["not_a_target"]},),  # feed-forward modules must be targets
            ),
            Case(
                "mlp-exclude-modules-to-save",
                models.MLP,
                lambda: IA3Config(
                    target_modules=["lin0", "lin1"], feedforward_modules=["lin1"], exclude_modules=["lin2"],
                    modules_to_save=["lin2"],
                ),
            ),
            Case(
                "conv",
                models.CONV,
                lambda: IA3Config(target_modules=["conv2d", "pointwise", "conv3d"], feedforward_modules=["pointwise"]),
            ),
            Case("llama-defaults", models.LLAMA, lambda: IA3Config(task_type="CAUSAL_LM")),
            Case(
                "llama-regex",
                models.LLAMA,
                # a regex target; feed-forward entries match name endings without a dot boundary
                lambda: IA3Config(target_modules=r".*\.(o_proj|up_proj|down_proj)", feedforward_modules=["n_proj"]),
            ),
            Case(
                "gpt2-conv1d",
                models.GPT2,
                lambda: IA3Config(
                    target_modules=["c_attn", "mlp.c_proj"], feedforward_modules=["mlp.c_proj"], task_type="CAUSAL_LM"
                ),
            ),
        ),
        random_init={"init_ia3_weights": False},
        hf=HuggingFace(),
    )
