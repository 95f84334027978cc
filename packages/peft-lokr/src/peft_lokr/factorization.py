"""How LoKr splits a dimension into two Kronecker factors (Hugging Face PEFT's `factorization` rule)."""

from __future__ import annotations


def _next_divisor(n: int, above: int) -> int:
    d = above + 1
    while n % d:
        d += 1
    return d


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """Split `dimension` into `(a, b)` with `a * b == dimension`.

    - `factor > 0` dividing `dimension`: `(factor, dimension // factor)`, in that order.
    - otherwise: walk the divisors of `dimension` upwards from 1 while the smaller part stays
      below the larger one and does not exceed `factor` (no limit for -1; any other value < 1
      stops at once, giving `(1, dimension)`); the last pair reached, smaller part first.
    """
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    limit = dimension if factor == -1 else factor
    small, large = 1, dimension
    while small < large:
        candidate = _next_divisor(dimension, small)
        if candidate > limit:
            break
        small, large = candidate, dimension // candidate
    return (small, large) if small <= large else (large, small)
