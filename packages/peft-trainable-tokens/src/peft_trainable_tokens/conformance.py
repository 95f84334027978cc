"""The conformance cases of `trainable_tokens` for peft-core's kit (`peft_core.testing`), shipped with the
package so the kit also runs against an installed wheel (`python -m peft_core.testing trainable_tokens`).

The trained rows are token ids that occur in every row of the kit's inputs, so each adapter changes each
row's output (the kit's inputs are the same every call).
"""

from __future__ import annotations

from typing import Callable

from peft_core.testing import Case, Conformance, HuggingFace, TinyModel, models

from .config import TrainableTokensConfig


def _ids_in_every_row(model: TinyModel, columns: slice) -> list[int]:
    """Distinct token ids found in `columns` of the model's inputs (every batch row contributes)."""
    ids = model.make_inputs()["input_ids"][:, columns]
    return sorted({int(i) for i in ids.flatten()})


def _config(model: TinyModel, columns: slice, **kwargs) -> Callable[[], TrainableTokensConfig]:
    return lambda: TrainableTokensConfig(token_indices=_ids_in_every_row(model, columns), **kwargs)


def conformance() -> Conformance:
    return Conformance(
        method="trainable_tokens",
        cases=(
            # a plain embedding + linear layers (no transformers needed)
            Case(
                "embedding",
                models.EMBEDDING,
                _config(models.EMBEDDING, slice(1, 3), target_modules=["emb"]),
                second=_config(models.EMBEDDING, slice(3, 5), target_modules=["emb"]),
            ),
            # Llama with untied embeddings: the input embedding found by get_input_embeddings()
            Case("llama", models.LLAMA, _config(models.LLAMA, slice(1, 3)), second=_config(models.LLAMA, slice(3, 5))),
            # GPT-2 ties its LM head to the input embedding: the head follows the rows
            Case("gpt2-tied", models.GPT2, _config(models.GPT2, slice(1, 3)), second=_config(models.GPT2, slice(3, 5))),
        ),
        random_init={"init_weights": False},
        hf=HuggingFace(),
        bad_values=({"token_indices": [1, 1]}, {"token_indices": [-2]}, {"token_indices": "3"}),
    )
