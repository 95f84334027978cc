"""VeRA's cases for peft-core's conformance kit (`python -m peft_core.testing vera`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import VeraConfig


def conformance() -> Conformance:
    return Conformance.of(
        VeraConfig,
        on(
            models.MLP, "mlp-bias-extras", r=3, target_modules=["lin0", "lin1"], bias="vera_only", modules_to_save=["lin2"],
            d_initial=0.3, second=dict(r=3, target_modules=["lin0", "lin1"], d_initial=0.2),
        ),
        on(models.LLAMA, "llama-save-projection", r=4, projection_prng_key=5, second=dict(r=4, projection_prng_key=5, d_initial=0.2)),
        # projections not saved: regenerated from the key when loaded, here and in Hugging Face PEFT
        on(models.GPT2, "gpt2-conv1d-prng-only", r=4, save_projection=False, projection_prng_key=3),
        random_init={"init_weights": False},
        hf=True,
        bad_values=({"bias": "lora"}, {"r": 0}, {"layers_pattern": "layers"}),
    )
