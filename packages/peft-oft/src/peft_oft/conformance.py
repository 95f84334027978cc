"""OFT's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing oft`).

Found through the `peft.conformance` entry point; run in the package's tests by
`tests/test_conformance.py`. Cases cover Linear, Conv2d and Embedding layers, `r` and
`oft_block_size`, and the exact Cayley transform with a shared block. The Conv2d case is left out of
the Hugging Face comparison: HF's unmerged Conv2d forward differs from its own merged layer for kernels
above 1x1 (see `peft_oft.layer`; the package's tests compare it). Two options don't fit the kit's
checks and are tested by the package: COFT re-projects its parameters in place at every forward (a
reloaded adapter is close, not bit-identical), and a trained bias (`bias="oft_only"`) stays when
the adapter is disabled, as in Hugging Face PEFT.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import OFTConfig

LLAMA_TARGETS = ["q_proj", "v_proj", "down_proj"]


def _oft(*targets: str, **kwargs):
    return lambda: OFTConfig(target_modules=list(targets), **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="oft",
        cases=(
            Case("mlp", models.MLP, _oft("lin0", "lin1", "lin2", oft_block_size=4), second=_oft("lin1", r=2, oft_block_size=0)),
            Case("mlp-modules-to-save", models.MLP, _oft("lin0", "lin1", oft_block_size=4, modules_to_save=["lin2"])),
            # 4 doesn't divide conv2d's 3*3*3 inputs: adjusted to 3 with a warning, as in HF
            Case("conv", models.CONV, _oft("conv2d", "pointwise", "head", oft_block_size=4), hf=False),
            Case("embedding", models.EMBEDDING, _oft("emb", "lin0", oft_block_size=4)),
            Case("llama", models.LLAMA, _oft(*LLAMA_TARGETS, oft_block_size=8, task_type="CAUSAL_LM"),
                 second=_oft("v_proj", "o_proj", r=2, oft_block_size=0, task_type="CAUSAL_LM")),
            Case("llama-exact-cayley-block-share", models.LLAMA,
                 _oft(*LLAMA_TARGETS, r=4, oft_block_size=0, use_cayley_neumann=False, block_share=True)),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=(
            {"r": 0, "oft_block_size": 0},
            {"r": 4, "oft_block_size": 8},
            {"layers_pattern": "layers"},  # without layers_to_transform
            {"bias": "some"},
            {"init_weights": "gaussian"},
        ),
    )
