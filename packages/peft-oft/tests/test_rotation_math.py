"""The Cayley transforms, COFT projection and block bookkeeping, checked against independent math."""

from __future__ import annotations

import math

import pytest
import torch

from peft_oft.layer import adjust_to_divisor, resolve_blocks
from peft_oft.rotation import OFTRotation, cayley_exact, cayley_neumann, coft_project, skew_from_packed


def _random_skew(n: int, b: int, scale: float = 0.1, dtype=torch.float64) -> torch.Tensor:
    a = torch.randn(n, b, b, dtype=dtype) * scale
    return a - a.transpose(-2, -1)


def _expected_series(q: torch.Tensor, k: int) -> torch.Tensor:
    """HF >= 0.18's polynomial written out: coefficients 1, 2, 2, ..., 2, 1 (see the module docstring)."""
    eye = torch.eye(q.shape[-1], dtype=q.dtype).expand_as(q)
    if k <= 1:
        return eye.clone()
    if k == 2:
        return eye + 2 * q
    last = max(k - 1, 3)  # k=3 keeps Q^3 as its last term, like k=4
    total = eye.clone()
    for j in range(1, last):
        total = total + 2 * torch.linalg.matrix_power(q, j)
    return total + torch.linalg.matrix_power(q, last)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 6, 8])
def test_neumann_series_term_for_term(k):
    q = _random_skew(3, 5)
    torch.testing.assert_close(cayley_neumann(q, k), _expected_series(q, k), atol=1e-12, rtol=0)


def test_k3_and_k4_are_the_same_polynomial():
    q = _random_skew(2, 4)
    assert torch.equal(cayley_neumann(q, 3), cayley_neumann(q, 4))
    assert not torch.allclose(cayley_neumann(q, 4), cayley_neumann(q, 5))


def test_exact_cayley_is_orthogonal_and_the_inverse_of_the_series():
    q = _random_skew(4, 6, scale=0.02)
    exact = cayley_exact(q)
    eye = torch.eye(6, dtype=q.dtype).expand_as(exact)
    torch.testing.assert_close(exact @ exact.transpose(-2, -1), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(exact, torch.linalg.solve(eye + q, eye - q, left=False))
    # The trap: the default series approximates (I+Q)(I-Q)^-1, the transpose of the exact path.
    series = cayley_neumann(q, 12)
    torch.testing.assert_close(series, exact.transpose(-2, -1), atol=1e-9, rtol=0)  # fp64 solve rounding: ~1e-10
    assert (series - exact).abs().max() > 1e-3


def test_skew_from_packed_fills_the_strict_upper_triangle():
    b = 4
    rows, cols = torch.triu_indices(b, b, 1)
    vec = torch.arange(1.0, 7.0).unsqueeze(0)
    q = skew_from_packed(vec, rows, cols, b)[0]
    expected = torch.tensor(
        [[0.0, 1, 2, 3], [-1, 0, 4, 5], [-2, -4, 0, 6], [-3, -5, -6, 0]]
    )
    assert torch.equal(q, expected)


def test_coft_projection_matches_independent_computation():
    b, n, eps = 4, 3, 0.05
    rows, cols = torch.triu_indices(b, b, 1)
    vec = torch.randn(n, b * (b - 1) // 2) * 0.1
    vec[1] *= 1e-4  # inside the ball: unchanged
    got = coft_project(vec, rows, cols, b, eps)
    radius = eps / math.sqrt(n)
    for i in range(n):
        q = skew_from_packed(vec[i : i + 1], rows, cols, b)[0]
        norm = q.norm()
        want = q if norm <= radius else q * (radius / norm)
        torch.testing.assert_close(got[i], want[rows, cols])
    assert torch.equal(got[1], vec[1])


def test_rotation_module_block_share_and_matrix():
    rot = OFTRotation(3, 4, 12, block_share=True)
    torch.nn.init.normal_(rot.weight, std=0.1)
    assert rot.weight.shape == (1, 6)
    blocks = rot.blocks()
    assert torch.equal(rot.matrix(), torch.block_diag(blocks[0], blocks[0], blocks[0]))
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(rot.rotate(x), x @ rot.matrix())
    assert "rows" not in rot.state_dict() and set(rot.state_dict()) == {"weight"}


@pytest.mark.parametrize("total", [6, 12, 16, 30, 32, 36, 48])
def test_block_adjustment_matches_hf(total):
    layer_cls = pytest.importorskip("peft.tuners.oft.layer").OFTLayer
    for value in range(1, 2 * total + 2):
        assert adjust_to_divisor(total, value) == layer_cls.adjust_oft_parameters(None, total, value), value


def test_resolve_blocks_warns_and_adjusts():
    assert resolve_blocks(32, 0, 8) == (4, 8)
    assert resolve_blocks(32, 4, 0) == (4, 8)
    with pytest.warns(UserWarning, match=r"Adjusted `oft_block_size` to \(16\)"):
        assert resolve_blocks(16, 0, 32) == (1, 16)
    with pytest.warns(UserWarning, match=r"Adjusted `r` to \(4\)"):
        assert resolve_blocks(12, 5, 0) == (4, 3)
