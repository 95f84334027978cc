"""FourierFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing fourierft`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. The default `init_weights=False` draws a random spectrum (the adapter
changes the output from the start); `init_weights=True` starts from zeros. `n_frequency` stays below
the smallest targeted layer's `out * in`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import FourierFTConfig


def conformance() -> Conformance:
    return Conformance(
        method="fourierft",
        cases=(
            Case(
                "mlp-bias-extras",
                models.MLP,
                lambda: FourierFTConfig(target_modules=["lin0", "lin1"], n_frequency=9, bias="fourier_only", modules_to_save=["lin2"]),
                second=lambda: FourierFTConfig(target_modules=["lin1", "lin2"], n_frequency=6, random_loc_seed=1),
            ),
            Case(
                "llama-patterns",
                models.LLAMA,
                lambda: FourierFTConfig(
                    target_modules=["q_proj", "v_proj", "down_proj"], n_frequency=16, scaling=100.0,
                    n_frequency_pattern={"v_proj": 8, "layers.1.self_attn.q_proj": 5}, exclude_modules=["layers.1.mlp.down_proj"],
                    task_type="CAUSAL_LM",
                ),
                second=lambda: FourierFTConfig(target_modules=["v_proj", "o_proj"], n_frequency=7, random_loc_seed=1, task_type="CAUSAL_LM"),
            ),
            Case("gpt2-conv1d", models.GPT2, lambda: FourierFTConfig(n_frequency=20, scaling=30.0, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={"init_weights": True},
        hf=HuggingFace(),
        bad_values=(
            {"n_frequency": 0}, {"random_loc_seed": None}, {"bias": "some"}, {"layers_pattern": "layers"},
        ),
    )
