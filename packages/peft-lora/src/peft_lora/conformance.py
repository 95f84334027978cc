"""LoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing lora`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Each case is a layer type or model family LoRA supports.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import LoraConfig


def _ids_in_inputs(model: TinyModel) -> list[int]:
    """Token ids found in every row of the kit's (fixed) inputs, so trained rows change every row's output."""
    return sorted({int(i) for i in model.make_inputs()["input_ids"][:, 1:3].flatten()})


def conformance() -> Conformance:
    return Conformance(
        method="lora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: LoraConfig(r=4, lora_alpha=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: LoraConfig(r=2, target_modules=["lin1"]),
            ),
            Case("mlp-dora-rslora", models.MLP, lambda: LoraConfig(r=4, target_modules=["lin0", "lin1"], use_dora=True, use_rslora=True)),
            Case("conv", models.CONV, lambda: LoraConfig(r=2, target_modules=["conv2d", "pointwise", "conv1d", "conv3d", "head"])),
            Case("embedding", models.EMBEDDING, lambda: LoraConfig(r=3, target_modules=["emb", "lin0"])),
            Case(
                "llama",
                models.LLAMA,
                lambda: LoraConfig(
                    r=4, target_modules=["q_proj", "v_proj", "down_proj"], rank_pattern={"down_proj": 2},
                    alpha_pattern={"v_proj": 16}, task_type="CAUSAL_LM",
                ),
                second=lambda: LoraConfig(r=2, target_modules=["v_proj", "o_proj"], task_type="CAUSAL_LM"),
            ),
            Case("gpt2-conv1d", models.GPT2, lambda: LoraConfig(r=4, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM")),
            # new-token rows next to LoRA on GPT-2, whose LM head is tied to the input embedding (the head follows)
            Case(
                "gpt2-token-rows",
                models.GPT2,
                lambda: LoraConfig(
                    r=2, target_modules=["c_attn"], trainable_token_indices=_ids_in_inputs(models.GPT2), task_type="CAUSAL_LM"
                ),
            ),
            Case("bert-seq-cls", models.BERT, lambda: LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS")),
        ),
        random_init={"init_lora_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"init_lora_weights": "not_an_init"},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"rank_pattern": {"lin0": 0}},
            {"bias": "some"},
        ),
    )
