"""VB-LoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the
kit also runs against an installed wheel (`python -m peft_core.testing vblora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
Every case uses a vector length dividing the targets' sizes. The default start is already non-trivial
(random logits and bank), as in Hugging Face PEFT. `save_only_topk_weights` files are checked in the
package's own tests: their reload is exact only up to the softmax of the logarithm of the weights.

Each case's first adapter mixes all its vectors (`topk=num_vectors`): the kit's `dtypes` check loads it
into bf16, where logits that differ in fp32 can round to a tie and the top-k picks another vector (a
large, legitimate change of output, in Hugging Face PEFT too; about one random draw in three on the
MLP). The second adapters pick a true top-k (add / delete, mixed batches, sub-folder saves), and the
package's own tests compare top-k adapters with Hugging Face PEFT.
"""

from __future__ import annotations

from peft_core.testing import Case, Conformance, HuggingFace, models

from .config import VBLoRAConfig


def conformance() -> Conformance:
    return Conformance(
        method="vblora",
        cases=(
            Case(
                "mlp",
                models.MLP,
                lambda: VBLoRAConfig(r=4, num_vectors=16, topk=16, vector_length=8, target_modules=["lin0", "lin1", "lin2"]),
                second=lambda: VBLoRAConfig(r=2, num_vectors=8, vector_length=16, topk=3, target_modules=["lin1"]),
            ),
            Case(
                "llama",
                models.LLAMA,
                lambda: VBLoRAConfig(
                    r=4, num_vectors=8, topk=8, vector_length=8, target_modules=["q_proj", "v_proj", "down_proj"],
                    task_type="CAUSAL_LM",
                ),
                second=lambda: VBLoRAConfig(
                    r=2, num_vectors=8, topk=2, vector_length=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
                ),
            ),
            Case(
                "gpt2-conv1d",
                models.GPT2,
                lambda: VBLoRAConfig(
                    r=2, num_vectors=16, topk=16, vector_length=16, target_modules=["c_attn", "mlp.c_proj"], task_type="CAUSAL_LM"
                ),
                second=lambda: VBLoRAConfig(r=2, num_vectors=16, vector_length=16, target_modules=["c_attn"], task_type="CAUSAL_LM"),
            ),
        ),
        random_init={"init_vector_bank_bound": 0.5},  # the default bank (±0.02) changes outputs only slightly
        noop_init=None,  # random logits and bank: a fresh adapter always changes the output (as in HF)
        hf=HuggingFace(),
        bad_values=(
            {"topk": 0},
            {"num_vectors": -1},
            {"vector_length": 0},
            {"topk": 64},  # more than num_vectors
            {"bias": "lora_only"},
            {"init_logits_std": -0.1},
        ),
    )
