"""AdaMSS's decomposition of one weight, as Hugging Face PEFT 0.21.2 computes it.

`[W | b]` (the bias as an extra column when there is one) gets a rank-r low-rank SVD (`svd_lowrank`,
two power iterations, under a forked RNG seeded with `random_seed`): `U [out, r']`, `newB = Vᵀ [r', in(+1)]`.
scikit-learn's k-means (`init="random"`, one run, 10 iterations, `random_state=123456789`) clusters the
rows of `U` into subspaces; each subspace gets `A_k` from a QR of its rows' projection onto the top
eigenvectors of their Gram matrix. The saved file holds `A_k`, `B_k` and `newB` but not the
clustering, which is computed again on load: the same base weight gives the same subspaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from peft_core import ConfigError

KMEANS_SEED = 123456789
KMEANS_ITERATIONS = 10


@dataclass
class Decomposition:
    new_b: torch.Tensor  # [r', in(+1)], fp32
    rows: list[torch.Tensor]  # output rows of each subspace (int64)
    a_init: list[torch.Tensor]  # [rank_k, r'] per subspace, fp32
    b_init: list[torch.Tensor]  # [rows_k, rank_k] per subspace, in the weight's dtype
    ranks: list[int]


def low_rank_svd(matrix: torch.Tensor, r: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(U [out, r'], Vᵀ [r', in]) with r' = min(r, out, in), seeded."""
    rank = min(r, *matrix.shape)
    devices = {"devices": []} if matrix.device.type == "cpu" else {"devices": [matrix.device], "device_type": matrix.device.type}
    with torch.random.fork_rng(**devices):
        torch.manual_seed(seed)
        u, _, v = torch.svd_lowrank(matrix, q=rank, niter=2, M=None)
    return u[:, :rank], v[:, :rank].T


def cluster_rows(u: torch.Tensor, num_subspaces: int) -> list[torch.Tensor]:
    from sklearn.cluster import KMeans  # scikit-learn is imported only when an adapter is created
    from threadpoolctl import threadpool_limits

    points = u.detach().cpu().numpy().astype("float32")
    clusters = min(num_subspaces, points.shape[0])
    kmeans = KMeans(n_clusters=clusters, init="random", n_init=1, max_iter=KMEANS_ITERATIONS, random_state=KMEANS_SEED)
    # one thread: a layer's rows are few, and a thread pool's start-up dominates (same labels either way)
    with threadpool_limits(limits=1):
        labels = torch.from_numpy(kmeans.fit_predict(points)).long()
    rows = [torch.where(labels == k)[0] for k in range(clusters)]
    if any(len(r) == 0 for r in rows):
        raise ConfigError(f"AdaMSS: k-means left an empty subspace for {clusters} subspaces; lower num_subspaces.")
    return rows


def _rank(data: torch.Tensor, fixed: int, dynamic: bool, threshold: float) -> int:
    if not dynamic:
        return max(1, min(len(data), fixed))
    gram = data @ data.T
    singular = torch.svd_lowrank(gram, q=min(gram.shape), niter=2)[1]
    return max(1, min(int((singular > threshold * singular[0]).sum().item()), fixed, len(singular)))


def decompose(weight: torch.Tensor, bias: torch.Tensor | None, config) -> Decomposition:
    with torch.no_grad():
        full = weight if bias is None else torch.cat((weight, bias.unsqueeze(1)), dim=1)
        u, new_b = low_rank_svd(full.to(torch.float32), config.r, config.random_seed)
        rows = cluster_rows(u, config.num_subspaces)
        a_init, b_init, ranks = [], [], []
        for members in rows:
            data = u[members, : config.r]
            rank = _rank(data, config.subspace_rank, config.use_dynamic_rank, config.svd_threshold)
            gram = data @ data.T
            eigen = torch.svd_lowrank(gram, q=min(gram.shape[0], rank), niter=2)[0][:, :rank]
            q, _ = torch.linalg.qr(data.T @ eigen, mode="reduced")
            a_init.append(q.T.contiguous())
            ranks.append(rank)
            # drawn here, between the subspaces' SVDs, as HF draws them (seeded random starts agree)
            like = dict(dtype=weight.dtype, device=weight.device)
            if config.init_weights == "orthogonal":
                b_init.append(torch.zeros(len(members), rank, **like))
            else:
                b_init.append(torch.randn(len(members), rank, **like) * 0.01)
        return Decomposition(new_b.contiguous(), rows, a_init, b_init, ranks)
