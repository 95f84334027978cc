"""BOFT's cases for peft-core's conformance kit (`python -m peft_core.testing boft`)."""

from __future__ import annotations

from peft_core.testing import Conformance, models, on

from .config import BOFTConfig


def conformance() -> Conformance:
    return Conformance.of(
        BOFTConfig,
        on(models.MLP, boft_block_size=4, second=dict(target_modules=["lin1"], boft_block_size=0, boft_block_num=4)),
        # block_num with several factors: sizes were once read with Tensor.item(), which fails on meta
        on(
            models.MLP, "mlp-butterfly-factors", target_modules=["lin0", "lin1"], boft_block_size=0, boft_block_num=4,
            boft_n_butterfly_factor=2, second=dict(target_modules=["lin1", "lin2"], boft_block_size=2, boft_n_butterfly_factor=3),
            hf=False,
        ),
        on(
            models.CONV, boft_block_size=0, boft_block_num=1,
            second=dict(target_modules=["pointwise"], boft_block_size=2, boft_n_butterfly_factor=2), hf=False,
        ),
        on(models.LLAMA, boft_block_size=4, second=dict(target_modules=["o_proj"], boft_block_size=0, boft_block_num=4)),
        random_init={"init_weights": False},
        hf=True,
        bad_values=(
            {"boft_block_size": 0, "boft_block_num": 0},
            {"boft_block_size": 4, "boft_block_num": 8},
            {"boft_n_butterfly_factor": 0},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
        ),
    )
