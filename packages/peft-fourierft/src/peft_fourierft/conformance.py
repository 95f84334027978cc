"""FourierFT's cases for peft-core's conformance kit (`python -m peft_core.testing fourierft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import FourierFTConfig


def conformance() -> Conformance:
    return Conformance.of(
        FourierFTConfig,
        on(
            models.MLP, "mlp-bias-extras", target_modules=["lin0", "lin1"], n_frequency=9, bias="fourier_only",
            modules_to_save=["lin2"], second=dict(target_modules=["lin1", "lin2"], n_frequency=6, random_loc_seed=1),
        ),
        on(
            models.LLAMA, "llama-patterns", n_frequency=16, scaling=100.0,
            n_frequency_pattern={"v_proj": 8, "layers.1.self_attn.q_proj": 5}, exclude_modules=["layers.1.mlp.down_proj"],
            second=dict(target_modules=["v_proj", "o_proj"], n_frequency=7, random_loc_seed=1),
        ),
        on(models.GPT2, "gpt2-conv1d", n_frequency=20, scaling=30.0, target_modules=None),
        random_init={"init_weights": False},
        noop_init={"init_weights": True},
        hf=True,
        bad_values=({"n_frequency": 0}, {"random_loc_seed": None}, {"bias": "some"}, {"layers_pattern": "layers"}),
    )
