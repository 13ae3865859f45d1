"""Clusters with persistent anchors: a full fit (k-means anchors, clusters numbered by proxy row id),
and clusters built from given anchors (each cluster's members, centroid and proxy).

A full fit runs k-means; its final centroids become the clustering's *anchors*. Every row belongs
to its nearest anchor, now and in later refreshes (`refresh`), until the next full fit. A cluster's
*centroid* is the mean of its current members and its *proxy* the member nearest that centroid.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from shed_pipeline.core.clustering.assignment import CHUNK_ROWS, nearest_anchor
from shed_pipeline.core.clustering.seeded_kmeans import DEFAULT_MAX_ITER, kmeans
from shed_pipeline.core.clustering.state import ClusterState, FitInfo
from shed_pipeline.core.progress import Log, silent


def default_n_clusters(n_rows: int) -> int:
    """About 20 rows a cluster, SHED's own ratio (3,000 clusters for ~55k-70k rows), within [2, 3000]."""
    return int(min(3000, max(2, round(n_rows / 20))))


def fit_clusters(
    row_ids: Sequence[str],
    x: np.ndarray,
    k: int,
    seed: int,
    *,
    device: str = "cpu",
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-4,
    salt: str = "",
    log: Log = silent,
    warm_start: float = 0.0,
) -> ClusterState:
    """Full fit: k-means anchors, rows to their nearest anchor, clusters numbered by proxy row id
    (stable ids, whatever order the initialisation found them in; clusters left empty go last).
    `fit_id` hashes the anchors and `salt` (whatever else a consumer wants a new fit id for)."""
    res = kmeans(x, k, seed=seed, max_iter=max_iter, tol=tol, device=device, log=log, warm_start=warm_start)
    fit = FitInfo(
        fit_id="",
        k=k,
        seed=int(seed),
        max_iter=max_iter,
        tol=tol,
        dim=int(x.shape[1]),
        rows_at_fit=len(row_ids),
        anchor_msd_at_fit=float(res.sq_dist.mean()),
        n_iter=res.n_iter,
        converged=res.converged,
        warm_start=float(warm_start),
    )
    # k-means ends by assigning every row to its nearest centroid: the same assignment as
    # clusters_from_anchors would compute, so it is not computed twice.
    raw = _clusters_from_labels(row_ids, x, res.centroids, res.labels, fit)
    order = sorted(range(k), key=lambda c: (raw.proxy_row_ids[c] is None, raw.proxy_row_ids[c] or "", c))
    anchors = raw.anchors[order]
    fit.fit_id = _fit_id(anchors, salt)
    return ClusterState(
        anchors=anchors,
        centroids=raw.centroids[order],
        proxy_row_ids=[raw.proxy_row_ids[c] for c in order],
        member_row_ids=[raw.member_row_ids[c] for c in order],
        member_sq_dist=[raw.member_sq_dist[c] for c in order],
        fit=fit,
    )


def clusters_from_anchors(row_ids: Sequence[str], x: np.ndarray, anchors: np.ndarray, fit: FitInfo) -> ClusterState:
    """From scratch: every row to its nearest anchor, then each cluster's centroid and proxy."""
    labels, _ = nearest_anchor(x, anchors)
    return _clusters_from_labels(row_ids, x, anchors, labels, fit)


def summarise_cluster(
    idx: np.ndarray, row_ids: Sequence[str], x: np.ndarray
) -> tuple[np.ndarray, str, list[str], list[float]]:
    """Centroid (mean of the members, summed in row-id order so it depends only on the member set),
    proxy (nearest member, ties to the smaller id), members in input order and their distances."""
    by_id = sorted(idx.tolist(), key=lambda i: row_ids[i])
    centroid = _rows64(x, by_id).mean(0).astype(np.float32)
    sq = _sq_to(_rows64(x, idx), centroid)
    members = [row_ids[i] for i in idx]
    best = min(range(len(idx)), key=lambda j: (sq[j], members[j]))
    return centroid, members[best], members, [float(v) for v in sq]


def sq_dist_to(
    x: np.ndarray, idx: np.ndarray, centres: np.ndarray, labels: np.ndarray, chunk: int = CHUNK_ROWS
) -> np.ndarray:
    """Squared distance of rows x[idx] to centres[labels] (float32 centres), in float64 blocks."""
    c64 = np.asarray(centres, dtype=np.float32).astype(np.float64)
    out = np.empty(len(idx), dtype=np.float64)
    for s in range(0, len(idx), chunk):
        out[s : s + chunk] = ((_rows64(x, idx[s : s + chunk]) - c64[labels[s : s + chunk]]) ** 2).sum(1)
    return out


def _clusters_from_labels(
    row_ids: Sequence[str], x: np.ndarray, anchors: np.ndarray, labels: np.ndarray, fit: FitInfo
) -> ClusterState:
    k = anchors.shape[0]
    state = ClusterState(
        anchors=np.asarray(anchors, dtype=np.float32),
        centroids=np.asarray(anchors, dtype=np.float32).copy(),
        proxy_row_ids=[None] * k,
        member_row_ids=[[] for _ in range(k)],
        member_sq_dist=[[] for _ in range(k)],
        fit=fit,
    )
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    for c in range(k):
        idx = order[bounds[c] : bounds[c + 1]]
        if len(idx):
            state.centroids[c], state.proxy_row_ids[c], state.member_row_ids[c], state.member_sq_dist[c] = (
                summarise_cluster(idx, row_ids, x)
            )
    return state


def _fit_id(anchors: np.ndarray, salt: str) -> str:
    h = hashlib.sha256(np.ascontiguousarray(anchors, dtype=np.float32).tobytes())
    h.update(salt.encode())
    return h.hexdigest()[:16]


def _rows64(x: np.ndarray, idx) -> np.ndarray:
    return np.asarray(x[idx], dtype=np.float64)


def _sq_to(x64: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x64 - np.asarray(c, dtype=np.float32).astype(np.float64)) ** 2).sum(-1)
