"""BOFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing boft`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Cases cover Linear and Conv2d layers, `boft_block_size` and
`boft_block_num`, one and several butterfly factors. Hugging Face PEFT builds several factors only
with its CUDA extension (on CPU it silently trains one), so those cases stay out of the kit's
comparison; the package's tests compare them with HF's extension replaced by a PyTorch equivalent.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import BOFTConfig


def _boft(*targets: str, **kwargs):
    return lambda: BOFTConfig(target_modules=list(targets), **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="boft",
        cases=(
            Case("mlp", models.MLP, _boft("lin0", "lin1", "lin2", boft_block_size=4),
                 second=_boft("lin1", boft_block_size=0, boft_block_num=4)),
            # block_num with several factors: sizes were once read with Tensor.item(), which fails on meta
            Case("mlp-butterfly-factors", models.MLP,
                 _boft("lin0", "lin1", boft_block_size=0, boft_block_num=4, boft_n_butterfly_factor=2),
                 second=_boft("lin1", "lin2", boft_block_size=2, boft_n_butterfly_factor=3), hf=False),
            Case("conv", models.CONV, _boft("conv2d", "pointwise", "head", boft_block_size=0, boft_block_num=1),
                 second=_boft("pointwise", boft_block_size=2, boft_n_butterfly_factor=2), hf=False),
            Case("llama", models.LLAMA, _boft("q_proj", "v_proj", "down_proj", boft_block_size=4, task_type="CAUSAL_LM"),
                 second=_boft("o_proj", boft_block_size=0, boft_block_num=4, task_type="CAUSAL_LM")),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"boft_block_size": 0, "boft_block_num": 0},
            {"boft_block_size": 4, "boft_block_num": 8},
            {"boft_n_butterfly_factor": 0},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
        ),
    )
