"""The wavelet families WaveFT accepts, with the filters PyWavelets defines for them.

Hugging Face PEFT 0.21.2 accepts Daubechies `db1`–`db38`, Symlets `sym2`–`sym20` and Coiflets
`coif1`–`coif17` in its config. Its own filter table, though, covers only `db1`–`db10`,
`sym2`–`sym10` and `coif1`–`coif5`; its `coif4` coefficients differ from the published ones (they
are not orthonormal: Σh² ≈ 1.0099) and its `coif5` has the wrong length, so HF fails for `coif5` and
beyond its table. We take every filter from PyWavelets (imported on first use): identical to HF's
values where HF's are right, and the real wavelet elsewhere.
"""

from __future__ import annotations

import functools

import torch

FAMILIES: tuple[str, ...] = (
    *(f"db{i}" for i in range(1, 39)),
    *(f"sym{i}" for i in range(2, 21)),
    *(f"coif{i}" for i in range(1, 18)),
)

# Families whose outputs differ from Hugging Face PEFT 0.21.2 (HF's table is wrong or missing them).
DIFFERS_FROM_HF: frozenset[str] = frozenset(
    {"coif4"} | {f"db{i}" for i in range(11, 39)} | {f"sym{i}" for i in range(11, 21)} | {f"coif{i}" for i in range(5, 18)}
)


@functools.lru_cache(maxsize=None)
def _filters(family: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    import pywt

    wavelet = pywt.Wavelet(family)
    return tuple(wavelet.rec_lo), tuple(wavelet.rec_hi)


def filter_length(family: str) -> int:
    return len(_filters(family)[0])


def reduction(family: str) -> int:
    """How many rows/columns a one-level reconstruction loses to the filter's support (`length − 2`)."""
    return filter_length(family) - 2


def reconstruction_filters(family: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The low-pass and high-pass reconstruction filters as tensors."""
    rec_lo, rec_hi = _filters(family)
    return torch.tensor(rec_lo, dtype=dtype, device=device), torch.tensor(rec_hi, dtype=dtype, device=device)
