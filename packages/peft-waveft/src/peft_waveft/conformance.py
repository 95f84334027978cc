"""WaveFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing waveft`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import WaveFTConfig


def conformance() -> Conformance:
    return Conformance(
        method="waveft",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: WaveFTConfig(n_frequency=20, wavelet_family="db2", target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: WaveFTConfig(n_frequency=10, wavelet_family="sym3", target_modules=["lin1"]),
            ),
            Case("llama", models.LLAMA, lambda: WaveFTConfig(n_frequency=30, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM")),
            Case("gpt2-conv1d", models.GPT2, lambda: WaveFTConfig(n_frequency=20, wavelet_family="coif1", target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        noop_init={},
        hf=HuggingFace(),
        bad_values=({"wavelet_family": "bior1.3"}, {"n_frequency": 0}, {"layers_pattern": "layers"},),
    )
