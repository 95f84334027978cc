"""RoAd's math: per-pair 2-D rotations with scales, applied to a layer's output features.

Within each group of `g` output features, feature `i` and feature `i + g/2` form a pair `(a, b)`:

    a' = c1·a − s2·b        b' = s1·a + c2·b

with `c = alpha·cos(theta)` and `s = alpha·sin(theta)`. The variants differ only in how many
angles and scales they store (see `rotation_columns`). As a matrix `R` (block-structured, one
2×2 rotation-with-scale per pair) this is `y' = R y`, so merging folds `R` into the layer:
`W' = R W`, `b' = R b`.
"""

from __future__ import annotations

import torch

PARAMETERS_PER_FEATURE = {"road_1": 0.5, "road_2": 1, "road_4": 2}


def parameter_count(variant: str, out_features: int) -> int:
    return int(out_features * PARAMETERS_PER_FEATURE[variant])


def rotation_columns(
    variant: str, group_size: int, theta: torch.Tensor, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonal (`alpha·cos`) and off-diagonal (`alpha·sin`) factor of every output feature."""
    half = group_size // 2
    if variant == "road_1":  # one angle/scale per pair, shared by both features of the pair
        theta = theta.reshape(-1, half).repeat_interleave(2, dim=0).flatten()
        alpha = alpha.reshape(-1, half).repeat_interleave(2, dim=0).flatten()
        return alpha * theta.cos(), alpha * theta.sin()
    if variant == "road_2":
        return alpha * theta.cos(), alpha * theta.sin()
    if variant == "road_4":  # per group: first half of the values drives cos, second half sin
        theta = theta.reshape(-1, 2, group_size)
        alpha = alpha.reshape(-1, 2, group_size)
        diagonal = alpha[:, 0, :].flatten() * theta[:, 0, :].cos().flatten()
        return diagonal, alpha[:, 1, :].flatten() * theta[:, 1, :].sin().flatten()
    raise ValueError(f"Unknown RoAd variant {variant!r}.")


def rotate(variant: str, group_size: int, theta: torch.Tensor, alpha: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Apply the rotations to the last dimension of `y`."""
    diagonal, off_diagonal = rotation_columns(variant, group_size, theta, alpha)
    grouped = y.reshape(-1, 2, group_size // 2)
    partner = torch.stack((-grouped[:, 1, :], grouped[:, 0, :]), dim=1).reshape(y.shape)
    return y * diagonal + partner * off_diagonal


def rotation_matrix(variant: str, group_size: int, theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """`R` with `rotate(y) == y @ R.T`, as a dense `[out, out]` matrix (for merging)."""
    diagonal, off_diagonal = rotation_columns(variant, group_size, theta, alpha)
    size = diagonal.shape[0]
    half = group_size // 2
    matrix = torch.diag(diagonal)
    # Row r of the first half of a group takes −s from its partner r + half; row r + half takes +s from r.
    index = torch.arange(size, device=diagonal.device).reshape(-1, 2, half)
    first, second = index[:, 0, :].flatten(), index[:, 1, :].flatten()
    off = off_diagonal.reshape(-1, 2, half)
    matrix[first, second] = -off[:, 0, :].flatten()
    matrix[second, first] = off[:, 1, :].flatten()
    return matrix
