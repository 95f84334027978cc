"""IA3's cases for peft-core's conformance kit (`python -m peft_core.testing ia3`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import IA3Config


def conformance() -> Conformance:
    return Conformance.of(
        IA3Config,
        on(
            models.MLP, feedforward_modules=["lin1"], second=dict(target_modules=["lin1", "lin2"], feedforward_modules=["lin1"]),
            bad_values=({"feedforward_modules": ["not_a_target"]},),  # feed-forward modules must be targets
        ),
        on(
            models.MLP, "mlp-exclude-modules-to-save",
            target_modules=["lin0", "lin1"], feedforward_modules=["lin1"], exclude_modules=["lin2"], modules_to_save=["lin2"],
        ),
        on(models.CONV, target_modules=["conv2d", "pointwise", "conv3d"], feedforward_modules=["pointwise"]),
        on(models.LLAMA, "llama-defaults", target_modules=None),
        # a regex target; feed-forward entries match name endings without a dot boundary
        on(models.LLAMA, "llama-regex", target_modules=r".*\.(o_proj|up_proj|down_proj)", feedforward_modules=["n_proj"], task_type=None),
        on(models.GPT2, "gpt2-conv1d", feedforward_modules=["mlp.c_proj"]),
        random_init={"init_ia3_weights": False},
        hf=True,
    )
