"""HRA's reflection products, checked against independent math."""

from __future__ import annotations

import torch

from peft_hra.reflections import gram_schmidt_reflection, householder_product, hra_matrix


def test_householder_product_is_the_ordered_product_of_reflections():
    u = torch.randn(6, 4, dtype=torch.float64)
    want = torch.eye(6, dtype=torch.float64)
    for i in range(4):
        v = u[:, i] / u[:, i].norm()
        want = want @ (torch.eye(6, dtype=torch.float64) - 2 * torch.outer(v, v))
    torch.testing.assert_close(householder_product(u), want)
    torch.testing.assert_close(want @ want.T, torch.eye(6, dtype=torch.float64))
    torch.testing.assert_close(householder_product(u) @ householder_product(u, reverse=True), torch.eye(6, dtype=torch.float64))


def test_paired_vectors_give_the_identity():
    half = torch.randn(5, 3, dtype=torch.float64)
    u = torch.repeat_interleave(half, 2, dim=1)
    torch.testing.assert_close(householder_product(u), torch.eye(5, dtype=torch.float64))


def test_gram_schmidt_reflection():
    u = torch.randn(7, 3, dtype=torch.float64)
    q, _ = torch.linalg.qr(u)  # same span, orthonormal; QR's signs don't matter for Q Qᵀ
    want = torch.eye(7, dtype=torch.float64) - 2 * q @ q.T
    torch.testing.assert_close(gram_schmidt_reflection(u), want)
    torch.testing.assert_close(hra_matrix(u, True) @ hra_matrix(u, True, reverse=True), torch.eye(7, dtype=torch.float64))
