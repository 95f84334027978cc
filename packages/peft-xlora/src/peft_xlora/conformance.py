"""X-LoRA's conformance cases for peft-core's kit (`peft_core.testing`), shipped with the package so the kit
also runs against an installed wheel (`python -m peft_core.testing xlora`).

Found through the `peft.conformance` entry point; run in the package's tests by `tests/test_conformance.py`.
The experts are LoRA adapters for the kit's tiny Llama, written once per process to a temporary folder by
`expert_paths()` (seeded: the same weights in every process). X-LoRA needs a transformers model (it reads
the hidden states); it can't merge and refuses mixed-adapter batches. Hugging Face PEFT can only load an
X-LoRA file when told where its experts are (`adapters=`), so the comparisons with it are in the package's
own tests.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

import torch

from peft_core.testing import Case, Conformance, models

from .config import XLoraConfig

# expert name -> (LoRA targets, rank, seed)
EXPERTS = {"0": (["q_proj", "v_proj"], 4, 1), "1": (["v_proj", "down_proj", "embed_tokens"], 2, 2), "2": (["q_proj", "o_proj"], 2, 3)}


@functools.lru_cache(maxsize=1)
def expert_paths() -> dict[str, str]:
    """LoRA experts for `models.LLAMA` (random, non-trivial weights), saved under a temporary folder."""
    from peft_core import get_peft_model
    from peft_lora import LoraConfig

    root = tempfile.mkdtemp(prefix="peft-xlora-experts-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    paths = {}
    for name, (targets, rank, seed) in EXPERTS.items():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False, task_type="CAUSAL_LM")
            model = get_peft_model(models.LLAMA.build(), config)
        paths[name] = os.path.join(root, name)
        model.save_pretrained(paths[name])
    return paths


def _config(**kwargs) -> XLoraConfig:
    experts = expert_paths()
    chosen = kwargs.pop("experts", list(experts))
    return XLoraConfig(task_type="CAUSAL_LM", hidden_size=32, adapters={k: experts[k] for k in chosen}, **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="xlora",
        cases=(
            Case(
                "llama-two-layer-classifier",
                models.LLAMA,
                lambda: _config(experts=["0", "1"], xlora_depth=2, xlora_size=16),
                second=lambda: _config(experts=["1", "2"], layerwise_scalings=True),
            ),
            Case("llama-top-k", models.LLAMA, lambda: _config(top_k_lora=2, enable_softmax=False, enable_softmax_topk=True)),
            Case("llama-trainable-experts", models.LLAMA, lambda: _config(experts=["0", "2"], use_trainable_adapters=True)),
        ),
        random_init=None,  # no init switch
        noop_init=None,  # the classifier starts random: a fresh adapter is never a no-op
        merge=False,
        mixed_batches=False,
        bad_values=(
            {"hidden_size": 0},
            {"xlora_depth": 0},
            {"xlora_dropout_p": 1.0},
            {"softmax_temperature": 0.0},
            {"top_k_lora": 0},
            {"adapters": {"a.b": "somewhere"}},  # not usable as an adapter name
        ),
    )
