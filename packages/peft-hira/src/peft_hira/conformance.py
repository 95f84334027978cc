"""HiRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing hira`)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import HiraConfig


def conformance() -> Conformance:
    return Conformance(
        method="hira",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: HiraConfig(r=4, target_modules=["lin0", "lin1", "lin2"]),
                # on layers that already hold an adapter, rank_pattern applies (lin2: rank 3)
                second=lambda: HiraConfig(r=2, target_modules=["lin1", "lin2"], rank_pattern={"lin2": 3}),
            ),
            Case("llama", models.LLAMA, lambda: HiraConfig(r=4, task_type="CAUSAL_LM")),
            Case("gpt2-conv1d", models.GPT2, lambda: HiraConfig(r=4, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
            Case("embedding", models.EMBEDDING, lambda: HiraConfig(r=4, target_modules=["emb", "lin0"])),
            # 3x3 and 1x1 Conv2d, Conv1d, and a Conv3d with a (1, 3, 3) kernel
            Case("conv", models.CONV, lambda: HiraConfig(r=2, target_modules=["conv2d", "pointwise", "conv1d", "conv3d"])),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"init_weights": "uniform"}, {"rank_pattern": {"lin0": 0}}),
    )
