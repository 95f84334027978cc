"""VB-LoRA's cases for peft-core's conformance kit (`python -m peft_core.testing vblora`).

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

from peft_core.testing import Conformance, models, on

from .config import VBLoRAConfig


def conformance() -> Conformance:
    return Conformance.of(
        VBLoRAConfig,
        on(models.MLP, r=4, num_vectors=16, topk=16, vector_length=8, second=dict(r=2, num_vectors=8, vector_length=16, topk=3, target_modules=["lin1"])),
        on(
            models.LLAMA, r=4, num_vectors=8, topk=8, vector_length=8,
            second=dict(r=2, num_vectors=8, topk=2, vector_length=8, target_modules=["q_proj", "v_proj"]),
        ),
        on(
            models.GPT2, "gpt2-conv1d", r=2, num_vectors=16, topk=16, vector_length=16,
            second=dict(r=2, num_vectors=16, vector_length=16, target_modules=["c_attn"]),
        ),
        random_init={"init_vector_bank_bound": 0.5},  # the default bank (±0.02) changes outputs only slightly
        noop_init=None,  # random logits and bank: a fresh adapter always changes the output (as in HF)
        hf=True,
        bad_values=(
            {"topk": 0},
            {"num_vectors": -1},
            {"vector_length": 0},
            {"topk": 64},  # more than num_vectors
            {"bias": "lora_only"},
            {"init_logits_std": -0.1},
        ),
    )
