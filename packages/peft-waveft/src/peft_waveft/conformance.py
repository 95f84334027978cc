"""WaveFT's cases for peft-core's conformance kit (`python -m peft_core.testing waveft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import WaveFTConfig


def conformance() -> Conformance:
    return Conformance.of(
        WaveFTConfig,
        on(models.MLP, n_frequency=20, wavelet_family="db2", second=dict(n_frequency=10, wavelet_family="sym3", target_modules=["lin1"])),
        on(models.LLAMA, n_frequency=30),
        on(models.GPT2, "gpt2-conv1d", n_frequency=20, wavelet_family="coif1"),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"wavelet_family": "bior1.3"}, {"n_frequency": 0}, {"layers_pattern": "layers"}),
    )
