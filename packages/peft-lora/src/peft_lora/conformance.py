"""LoRA's cases for peft-core's conformance kit (`python -m peft_core.testing lora`): each a layer type or
model family LoRA supports."""

from __future__ import annotations

from peft_core.testing import Case, Conformance, TinyModel, models, on

from .config import LoraConfig


def _ids_in_inputs(model: TinyModel) -> list[int]:
    """Token ids found in every row of the kit's (fixed) inputs, so trained rows change every row's output."""
    return sorted({int(i) for i in model.make_inputs()["input_ids"][:, 1:3].flatten()})


def conformance() -> Conformance:
    return Conformance.of(
        LoraConfig,
        on(models.MLP, r=4, lora_alpha=8, second=dict(r=2, target_modules=["lin1"])),
        on(models.MLP, "mlp-dora-rslora", r=4, target_modules=["lin0", "lin1"], use_dora=True, use_rslora=True),
        on(models.CONV, r=2, target_modules=["conv2d", "pointwise", "conv1d", "conv3d", "head"]),
        on(models.EMBEDDING, r=3),
        on(
            models.LLAMA, r=4, rank_pattern={"down_proj": 2}, alpha_pattern={"v_proj": 16},
            second=dict(r=2, target_modules=["v_proj", "o_proj"]),
        ),
        on(models.GPT2, "gpt2-conv1d", r=4),
        # new-token rows next to LoRA on GPT-2, whose LM head is tied to the input embedding (the head follows);
        # the ids are read from the model's inputs when the config is built
        Case(
            "gpt2-token-rows",
            models.GPT2,
            lambda: LoraConfig(r=2, target_modules=["c_attn"], trainable_token_indices=_ids_in_inputs(models.GPT2), task_type="CAUSAL_LM"),
        ),
        on(models.BERT, "bert-seq-cls", r=2),
        random_init={"init_lora_weights": False},
        hf=True,
        bad_values=(
            {"init_lora_weights": "not_an_init"},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"rank_pattern": {"lin0": 0}},
            {"bias": "some"},
        ),
    )
