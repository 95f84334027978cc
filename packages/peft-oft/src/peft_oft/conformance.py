"""OFT's cases for peft-core's conformance kit (`python -m peft_core.testing oft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import OFTConfig


def conformance() -> Conformance:
    return Conformance.of(
        OFTConfig,
        on(models.MLP, oft_block_size=4, second=dict(target_modules=["lin1"], r=2, oft_block_size=0)),
        on(models.MLP, "mlp-modules-to-save", target_modules=["lin0", "lin1"], oft_block_size=4, modules_to_save=["lin2"]),
        # 4 doesn't divide conv2d's 3*3*3 inputs: adjusted to 3 with a warning, as in HF
        on(models.CONV, oft_block_size=4, hf=False),
        on(models.EMBEDDING, oft_block_size=4),
        on(models.LLAMA, oft_block_size=8, second=dict(target_modules=["v_proj", "o_proj"], r=2, oft_block_size=0)),
        on(models.LLAMA, "llama-exact-cayley-block-share", r=4, oft_block_size=0, use_cayley_neumann=False, block_share=True, task_type=None),
        random_init={"init_weights": False},
        hf=True,
        bad_values=(
            {"r": 0, "oft_block_size": 0},
            {"r": 4, "oft_block_size": 8},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
            {"init_weights": "gaussian"},
        ),
    )
