"""Shadow's cases for peft-core's conformance kit (`python -m peft_core.testing shadow`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import ShadowConfig


def conformance() -> Conformance:
    return Conformance.of(
        ShadowConfig,
        on(models.LLAMA, r=4, target_modules=None, second=dict(r=2, shadow_alpha=0.5, update_hidden_size=6, target_modules=None)),
        on(
            models.GPT2, r=4, shadow_num_hidden_layers=2, shadow_hidden_size=48, target_modules=["transformer.h.0", "transformer.h.1"],
            second=dict(r=3, share_embeddings=False, target_modules=None),
        ),
        random_init={"init_weights": False},
        merge=False,
        mixed_batches=False,
        hf=True,
        bad_values=(
            {"shadow_num_hidden_layers": 0},
            {"update_hidden_size": -2},
            {"auxiliary_loss_weight": -0.1},
            {"shadow_model": "some/checkpoint", "shadow_hidden_size": 64},
            {"layers_pattern": "layers"},
        ),
        not_applicable={
            "state_dict": "Hugging Face PEFT's Shadow files keep the literal adapter name `default` in every key; "
            "tests/test_shadow.py checks that layout",
            "train_step": "the last wrapped block's shadow update feeds nothing (in Hugging Face PEFT too), so its two "
            "MLPs get no gradient; tests/test_shadow.py checks exactly which tensors train",
        },
    )
