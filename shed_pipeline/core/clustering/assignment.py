"""Each row's nearest anchor (centroid), exactly as float64 arithmetic gives it, a block of rows at a
time: a float32 faiss search settles most rows, and near-ties are rechecked in float64."""

from __future__ import annotations

import numpy as np

# Rows per block of float64 arithmetic (about 200 MB at 384 dimensions).
CHUNK_ROWS = 65_536
# Entries of a (rows x anchors) float64 block in nearest_anchor: 2^24 is 128 MiB, whatever K is.
ANCHOR_BLOCK_ENTRIES = 1 << 24
SEARCH_ROWS = 65_536  # rows per float32 search in nearest_anchor


def flat_index(centres: np.ndarray):
    """An exact float32 L2 index of `centres` (faiss: blocked, multi-threaded search)."""
    import faiss

    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    return index


def nearest_float64(xs: np.ndarray, a: np.ndarray, a_sq: np.ndarray) -> np.ndarray:
    """Nearest of anchors `a` (float64) for each row of xs (float64), ties to the lower index."""
    d = np.maximum((xs * xs).sum(1)[:, None] - 2.0 * xs @ a.T + a_sq[None, :], 0.0)
    return d.argmin(1)


def float32_distance_error(d: int) -> float:
    """Twice the worst-case relative error of a float32 squared distance ||x||^2 + ||c||^2 - 2 x.c over
    d dimensions (Higham's gamma_{d+2} = (d+2)u / (1 - (d+2)u), u = 2^-24), in units of
    (||x|| + ||c||)^2: any summation order, FMA or not, stays within it."""
    m = (d + 2) * 2.0**-24
    return 2.0 * m / (1.0 - m)


def nearest_anchor(x: np.ndarray, anchors: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Index of each row's nearest anchor (ties to the lower index) and the squared distance, as
    float64 arithmetic gives them, a block of rows at a time (no float64 copy of all rows).

    Float32 rows are searched in float32 (faiss, two nearest); a row whose two nearest are further
    apart than twice the float32 error bound has the float64 answer already, and only the others
    (near-ties, a fraction of a percent of real rows) are compared in float64 with every anchor.
    Other rows go through float64 directly, at most `chunk` rows at a time, fewer when there are so
    many anchors that a block would pass ANCHOR_BLOCK_ENTRIES."""
    a32 = np.ascontiguousarray(anchors, dtype=np.float32)
    a = a32.astype(np.float64)
    a_sq = (a * a).sum(1)
    chunk = max(1, min(chunk, ANCHOR_BLOCK_ENTRIES // max(1, len(a))))
    n = len(x)
    labels = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    fast = x.dtype == np.float32 and len(a) >= 2 and a.shape[1] > 0
    if fast:
        index = flat_index(a32)
        a_norm_max = float(np.sqrt(a_sq.max()))
        error = float32_distance_error(a32.shape[1])
    for s in range(0, n, SEARCH_ROWS if fast else chunk):
        xs = np.asarray(x[s : s + (SEARCH_ROWS if fast else chunk)])
        if fast:
            xs = np.ascontiguousarray(xs)
            d32, i32 = index.search(xs, 2)
            x_norm = np.sqrt(np.einsum("ij,ij->i", xs, xs, dtype=np.float64))
            bound = error * (x_norm + a_norm_max) ** 2
            gap = d32[:, 1].astype(np.float64) - d32[:, 0].astype(np.float64)
            settled = (i32[:, 0] >= 0) & np.isfinite(d32).all(1) & (gap > 2.0 * bound)
            lab = i32[:, 0].astype(np.int64)
            unsettled = np.flatnonzero(~settled)
            for t in range(0, len(unsettled), chunk):
                rows = unsettled[t : t + chunk]
                lab[rows] = nearest_float64(xs[rows].astype(np.float64), a, a_sq)
        else:
            lab = nearest_float64(xs.astype(np.float64), a, a_sq)
        labels[s : s + len(xs)] = lab
        # Exact distances to the chosen anchor (the expansions above only pick it).
        for t in range(0, len(xs), chunk):
            part = xs[t : t + chunk]
            dist[s + t : s + t + len(part)] = ((part.astype(np.float64) - a[lab[t : t + chunk]]) ** 2).sum(1)
    return labels, dist
