"""Butterfly permutations, the Cayley transform and the butterfly product, against independent math."""

from __future__ import annotations

import pytest
import torch

from peft_boft.butterfly import butterfly_matrix, butterfly_permutation, cayley
from peft_boft.layer import resolve_blocks


def _perm_matrix(perm: torch.Tensor) -> torch.Tensor:
    n = perm.numel()
    p = torch.zeros(n, n, dtype=torch.float64)
    p[torch.arange(n), perm] = 1.0
    return p


@pytest.mark.parametrize(
    "n, block_size, block_num, m",
    [(16, 4, 4, 0), (16, 4, 4, 1), (32, 4, 8, 2), (36, 2, 18, 1), (64, 8, 8, 2), (64, 2, 32, 4)],
)
def test_permutations_equal_hf(n, block_size, block_num, m):
    layer_mod = pytest.importorskip("peft.tuners.boft.layer")
    for i in range(m + 1):
        ours = butterfly_permutation(n, block_num // 2**i, block_size // 2, m)
        theirs = layer_mod.BOFTLayer.block_butterfly_perm(None, n, block_num // 2**i, block_size // 2, m)
        assert torch.equal(ours, theirs), i
        assert sorted(ours.tolist()) == list(range(n))


def test_permutation_is_even_chunks_then_odd_chunks():
    # 8 positions, 1 group, chunks of 2: chunks 0,2 then 1,3
    assert butterfly_permutation(8, 1, 2, 1).tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert butterfly_permutation(8, 2, 2, 1).tolist() == list(range(8))  # 2 chunks per group: identity
    assert butterfly_permutation(8, 4, 1, 1).tolist() == list(range(8))


def test_cayley_is_exact_and_orthogonal():
    a = torch.randn(5, 4, 4, dtype=torch.float64)
    got = cayley(a)
    s = 0.5 * (a - a.transpose(1, 2))
    eye = torch.eye(4, dtype=torch.float64)
    for i in range(5):
        want = (eye - s[i]) @ torch.linalg.inv(eye + s[i])
        torch.testing.assert_close(got[i], want)
        torch.testing.assert_close(got[i] @ got[i].T, eye)


def test_butterfly_matrix_is_the_product_of_permuted_block_diagonals():
    n, b, m = 16, 2, 3
    block_num = n // b
    blocks = cayley(torch.randn(m * block_num, b, b, dtype=torch.float64)).view(m, block_num, b, b)
    perms = torch.stack([butterfly_permutation(n, block_num // 2**i, b // 2, m - 1) for i in range(m)])
    want = torch.eye(n, dtype=torch.float64)
    for i in range(m):
        p = _perm_matrix(perms[i])
        want = p @ torch.block_diag(*blocks[i]) @ p.T @ want
    got = butterfly_matrix(blocks, perms)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got @ got.T, torch.eye(n, dtype=torch.float64))


@pytest.mark.parametrize(
    "n, size, num, factors, match",
    [
        (30, 4, 0, 1, "divisible by boft_block_size"),
        (32, 0, 5, 1, "divisible by boft_block_num"),
        (32, 8, 0, 4, "Invalid combination"),
        (36, 2, 0, 3, "Invalid combination"),
        (32, 0, 4, 4, "Invalid combination"),
        (24, 3, 0, 2, "must be an even number"),
        (12, 0, 3, 2, "multiple of 2"),
        (30, 0, 10, 2, "must be an even number"),
    ],
)
def test_block_validation(n, size, num, factors, match):
    with pytest.raises(ValueError, match=match):
        resolve_blocks(n, size, num, factors)


def test_block_resolution():
    assert resolve_blocks(32, 4, 0, 1) == (4, 8)
    assert resolve_blocks(32, 0, 8, 2) == (4, 8)
    assert resolve_blocks(30, 0, 5, 1) == (6, 5)  # odd sizes are fine with one factor
    assert resolve_blocks(32, 8, 0, 3) == (8, 4)
