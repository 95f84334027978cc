"""TinyLoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing tinylora`)."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import TinyLoraConfig


def conformance() -> Conformance:
    return Conformance(
        method="tinylora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: TinyLoraConfig(r=2, u=4, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: TinyLoraConfig(r=3, u=2, weight_tying=1.0, target_modules=["lin1", "lin2"]),
            ),
            Case("llama", models.LLAMA, lambda: TinyLoraConfig(r=2, u=3, weight_tying=0.5, task_type="CAUSAL_LM")),
            Case(
                "llama-embedding-regenerated",
                models.LLAMA,
                lambda: TinyLoraConfig(
                    r=2, u=5, save_projection=False, target_modules=["embed_tokens", "down_proj"], task_type="CAUSAL_LM"
                ),
            ),
            Case("gpt2-conv1d", models.GPT2, lambda: TinyLoraConfig(r=2, u=3, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": "uniform", "init_v_bound": 0.5},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"u": 0}, {"weight_tying": 1.5}, {"init_weights": "gaussian"}),
    )
