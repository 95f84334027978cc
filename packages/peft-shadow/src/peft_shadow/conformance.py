"""ShadowPEFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so
the kit also runs against an installed wheel (`python -m peft_core.testing shadow`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
The method wraps whole decoder blocks of a transformers decoder, so its cases are decoders: the Llama
with every block (a mirror backbone sharing the base embeddings) and GPT-2 (tuple-returning blocks,
its own `wte` kept) with a wider two-layer mirror (a trained projection to the base width).
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import ShadowConfig


def conformance() -> Conformance:
    return Conformance(
        method="shadow",
        not_applicable={
            "state_dict": "Hugging Face PEFT's Shadow files keep the literal adapter name `default` in every key; "
            "tests/test_shadow.py checks that layout",
            "train_step": "the last wrapped block's shadow update feeds nothing (in Hugging Face PEFT too), so its two "
            "MLPs get no gradient; tests/test_shadow.py checks exactly which tensors train",
        },
        cases=(
            Case(
                "llama",
                models.LLAMA,
                lambda: ShadowConfig(r=4, task_type="CAUSAL_LM"),
                second=lambda: ShadowConfig(r=2, shadow_alpha=0.5, update_hidden_size=6, task_type="CAUSAL_LM"),
            ),
            Case(
                "gpt2",
                models.GPT2,
                lambda: ShadowConfig(
                    r=4, shadow_num_hidden_layers=2, shadow_hidden_size=48, task_type="CAUSAL_LM",
                    target_modules=["transformer.h.0", "transformer.h.1"],
                ),
                second=lambda: ShadowConfig(r=3, share_embeddings=False, task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_weights": False},
        noop_init={},
        merge=False,
        mixed_batches=False,
        hf=HuggingFace(),
        bad_values=(
            {"shadow_num_hidden_layers": 0},
            {"update_hidden_size": -2},
            {"auxiliary_loss_weight": -0.1},
            {"shadow_model": "some/checkpoint", "shadow_hidden_size": 64},
            {"layers_pattern": "layers"},
        ),
    )
