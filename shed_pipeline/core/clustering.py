"""Seeded k-means (greedy k-means++ init, Lloyd iterations through faiss on the CPU, torch on a GPU,
both on bounded samples); clusters with persistent anchors that refresh incrementally; cluster
proxies; NMI.

Cluster ids are stable: a full fit numbers clusters in the order of their proxy's row id (the same
input and seed give the same ids whatever order the initialisation found them in), and a refresh
never renumbers them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import Log, Progress, silent


def default_n_clusters(n_rows: int) -> int:
    """About 20 rows a cluster, SHED's own ratio (3,000 clusters for ~55k-70k rows), within [2, 3000]."""
    return int(min(3000, max(2, round(n_rows / 20))))


# Sample sizes, as multiples of k: k-means++ seeds from at most INIT_ROWS_PER_CENTROID x k rows and
# Lloyd iterates on at most TRAIN_ROWS_PER_CENTROID x k (faiss's approach: beyond a few hundred rows a
# cluster, more rows barely move a centroid but cost every iteration); every row is assigned at the end.
# The pipeline's default k (about 20 rows a cluster) uses every row for both.
INIT_ROWS_PER_CENTROID = 20
# Measured on 800,160 pool rows at k 3,000: 192 rows a centre for 25 iterations reach 0.75% lower
# inertia than 128 for 100 iterations, in 40% of the time; on 80,000 rows, iterations 26-41 (to the
# tolerance) lowered inertia by 0.003%. Training rows buy more than iterations past 25.
TRAIN_ROWS_PER_CENTROID = 192
DEFAULT_MAX_ITER = 25
# A warm start (opt-in, `warm_start` > 0) iterates first on that fraction of the training rows, then
# this many iterations on all of them. Measured on the same 800,160 rows at k 3,000, seed 0: a
# quarter for 25 iterations then 5 on all took 377 s against 698 s, at 0.75% higher inertia (equal to
# 128 rows a centre for 100 iterations). Off by default: it trades inertia for time.
WARM_START_REFINE_ITER = 5
_CHUNK = 65_536  # rows per block of float64 arithmetic (about 200 MB at 384 dimensions)


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d) float32
    labels: np.ndarray  # (n,) int64: every row's nearest centroid (ties to the lower index)
    sq_dist: np.ndarray  # (n,) float64: every row's squared distance to it
    inertia: float
    n_iter: int
    converged: bool
    rows_seeded: int  # rows k-means++ chose the initial centres from
    rows_trained: int  # rows the Lloyd iterations ran on
    rows_warm_start: int = 0  # rows the warm-start iterations ran on (0: none)


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices: all rows, or `size` of them drawn without replacement."""
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, log: Log, device: str = "cpu") -> np.ndarray:
    """Greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's variant: 2 + ln k candidates per
    centre drawn in proportion to the squared distance, keep the one that lowers the potential
    most), on `device`. Distances in float32 (each step reads every seeding row once, so this halves
    its cost), sums in float64. Returns row indices."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    n = xt.shape[0]
    trials = 2 + int(math.log(k))
    x_sq = (xt * xt).sum(1)
    first = int(rng.integers(n))
    centers = [first]
    closest = (x_sq - 2.0 * (xt @ xt[first]) + x_sq[first]).clamp_min_(0.0)
    progress = Progress(k, "k-means++ seeding", log, unit="centres")
    progress.advance()
    for _ in range(1, k):
        cum = torch.cumsum(closest, 0, dtype=torch.float64)
        pot = float(cum[-1])
        if pot > 0:
            cand = torch.searchsorted(cum, torch.from_numpy(rng.random(trials) * pot).to(device)).clamp_max_(n - 1)
        else:  # every row sits on a centre already: any row will do
            cand = torch.from_numpy(rng.integers(n, size=trials)).to(device)
        d_cand = xt @ xt[cand].T  # (n, trials)
        d_cand.mul_(-2.0).add_(x_sq[:, None]).add_(x_sq[cand][None, :]).clamp_min_(0.0)
        torch.minimum(d_cand, closest[:, None], out=d_cand)
        best = int(torch.argmin(d_cand.sum(0, dtype=torch.float64)))
        centers.append(int(cand[best]))
        closest = d_cand[:, best].contiguous()
        progress.advance()
    return np.array(centers, dtype=np.int64)


def _flat_index(centres: np.ndarray):
    """An exact float32 L2 index of `centres` (faiss: blocked, multi-threaded search)."""
    import faiss

    index = faiss.IndexFlatL2(centres.shape[1])
    index.add(np.ascontiguousarray(centres, dtype=np.float32))
    return index


def _faiss_assign(x32: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row and the squared distance, float32."""
    dist, idx = _flat_index(centroids).search(x32, 1)
    return idx[:, 0].astype(np.int64), dist[:, 0].astype(np.float64)


def _lloyd_cpu(
    xt: np.ndarray, centroids: np.ndarray, max_iter: int, tol_abs: float, log: Log
) -> tuple[np.ndarray, int, bool]:
    """Lloyd iterations: assignment by faiss (float32), means summed in float64 in row order."""
    k, d = centroids.shape
    x32 = np.ascontiguousarray(xt, dtype=np.float32)  # no copy when it is float32 already
    progress = Progress(max_iter, "k-means iterations", log, unit="iterations")
    it, converged = 0, False
    history: list[float] = []  # the sample's inertia before each update: how much later iterations still gain
    for it in range(1, max_iter + 1):  # noqa: B007 (it is the iteration count reported after the loop)
        labels, dist = _faiss_assign(x32, centroids)
        history.append(float(dist.sum()))
        sums = torch.zeros(k, d, dtype=torch.float64)
        lab = torch.from_numpy(labels)
        for s in range(0, len(x32), _CHUNK):
            sums.index_add_(0, lab[s : s + _CHUNK], torch.from_numpy(x32[s : s + _CHUNK].astype(np.float64)))
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        new = sums.numpy() / np.maximum(counts, 1.0)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # Re-seed empty clusters on the rows farthest from their centre (deterministic order).
            far = np.argsort(-dist, kind="stable")[: len(empty)]
            new[empty] = x32[far]
        shift = float(((new - centroids) ** 2).sum())
        centroids = new
        progress.advance()
        if shift <= tol_abs:
            converged = True
            break
    progress.finish()
    log(_history_line(history))
    return centroids, it, converged


def _history_line(history: list[float]) -> str:
    marks = sorted({i for i in (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100) if i <= len(history)} | {len(history)})
    return (
        "k-means sample inertia by iteration: " + ", ".join(f"{i}: {history[i - 1]:.6g}" for i in marks)
        if history
        else "k-means: no iterations"
    )


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-4,
    device: str = "cpu",
    log: Log = silent,
    warm_start: float = 0.0,
) -> KMeansResult:
    """Seeded k-means: greedy k-means++ on a sample of at most INIT_ROWS_PER_CENTROID x k rows, Lloyd
    iterations on a sample of at most TRAIN_ROWS_PER_CENTROID x k rows (faiss on the CPU, torch on
    another device), then every row to its nearest centroid. `tol` is relative to the sample's mean
    variance, as in scikit-learn. Memory stays O(sample x d + k x d) whatever the number of rows.
    `warm_start` in (0, 1): the iterations run first on that fraction of the training rows (at least
    k of them), then WARM_START_REFINE_ITER more on all of them. The same input and seed give the
    same bytes on the same machine."""
    n = x.shape[0]
    check_warm_start(warm_start)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n < k:
        raise ValueError(f"cannot make {k} clusters from {n} rows")
    rng = np.random.default_rng(int(seed))
    train = _sample(n, TRAIN_ROWS_PER_CENTROID * k, rng)
    xt = np.ascontiguousarray(
        x[train], dtype=np.float32
    )  # float32 as given (embeddings are): no float64 copy of the sample
    seeding = _sample(len(train), INIT_ROWS_PER_CENTROID * k, rng)
    centroids = xt[seeding][_kmeans_pp(xt[seeding], k, rng, log, device)].astype(np.float64)
    tol_abs = float(tol * xt.var(0, dtype=np.float64).mean())
    lloyd = (
        (lambda rows, c, iters: _lloyd_cpu(rows, c, iters, tol_abs, log))
        if device == "cpu"
        else (lambda rows, c, iters: _lloyd_torch(rows, c, iters, tol_abs, device, log))
    )
    warm_rows, warm_iter = max(k, int(warm_start * len(xt))), 0
    if warm_start > 0 and warm_rows < len(xt):
        log(
            f"k-means warm start: {warm_rows} of {len(xt)} training rows first, then {WARM_START_REFINE_ITER} iterations on all"
        )
        centroids, warm_iter, _ = lloyd(xt[_sample(len(xt), warm_rows, rng)], centroids, max_iter)
        max_iter = WARM_START_REFINE_ITER
    else:
        warm_rows = 0
    centroids, n_iter, converged = lloyd(xt, centroids, max_iter)
    del xt
    centroids32 = centroids.astype(np.float32)
    labels, sq_dist = nearest_anchor(x, centroids32)
    return KMeansResult(
        centroids32,
        labels,
        sq_dist,
        float(sq_dist.sum()),
        warm_iter + n_iter,
        converged,
        len(seeding),
        len(train),
        warm_rows,
    )


def check_warm_start(warm_start: float) -> None:
    if not 0.0 <= warm_start < 1.0:
        raise ValueError(f"warm_start must be a fraction of the training rows in [0, 1) (0 = off), got {warm_start}")


# Entries of a (rows x centres) distance block on the device: 2^28 float32 is 1 GiB, whatever k is.
TORCH_BLOCK_ENTRIES = 1 << 28


def _lloyd_torch(
    xt: np.ndarray, centroids: np.ndarray, max_iter: int, tol_abs: float, device: str, log: Log
) -> tuple[np.ndarray, int, bool]:
    """Lloyd iterations on a torch device (CUDA), float32, distances a block of rows at a time."""
    x = torch.from_numpy(np.ascontiguousarray(xt, dtype=np.float32)).to(device)
    c = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32)).to(device)
    x_sq = (x * x).sum(1)
    n, k = x.shape[0], c.shape[0]
    rows = max(1, TORCH_BLOCK_ENTRIES // k)
    progress = Progress(max_iter, "k-means iterations", log, unit="iterations")
    it, converged = 0, False
    for it in range(1, max_iter + 1):  # noqa: B007 (it is the iteration count reported after the loop)
        c_sq = (c * c).sum(1)
        dist = torch.empty(n, dtype=x.dtype, device=device)
        labels = torch.empty(n, dtype=torch.long, device=device)
        for s in range(0, n, rows):
            d = (x_sq[s : s + rows, None] - 2.0 * (x[s : s + rows] @ c.T) + c_sq[None, :]).clamp_min_(0.0)
            dist[s : s + rows], labels[s : s + rows] = d.min(1)
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        new = sums / counts.clamp_min(1)[:, None]
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            far = dist.argsort(descending=True, stable=True)[: len(empty)]
            new[empty] = x[far]
        shift = float(((new - c) ** 2).sum())
        c = new
        progress.advance()
        if shift <= tol_abs:
            converged = True
            break
    progress.finish()
    return c.double().cpu().numpy(), it, converged


# -- clusters with persistent anchors (incremental refresh) ------------------------------------
#
# A full fit runs k-means; its final centroids become the clustering's *anchors*. Every row belongs
# to its nearest anchor, now and in later refreshes, until the next full fit. A cluster's *centroid*
# is the mean of its current members and its *proxy* the member nearest that centroid. A refresh
# assigns new rows to their nearest anchor and drops removed rows; only clusters whose membership
# changed ("affected") get a new centroid and proxy. So a refresh equals `clusters_from_anchors`
# run from scratch on the same rows and anchors, which is what the tests check.


@dataclass
class FitInfo:
    """How the anchors were fitted, and how much the rows have changed since."""

    fit_id: str  # content hash of the anchors: equal fits, equal id
    k: int
    seed: int
    max_iter: int
    tol: float
    dim: int
    rows_at_fit: int
    anchor_msd_at_fit: float  # mean squared distance of a row to its anchor, at fit time
    n_iter: int
    converged: bool
    rows_joined: int = 0  # rows added since the fit (all refreshes together)
    rows_left: int = 0  # rows removed since the fit
    warm_start: float = 0.0  # fraction of the training rows the first iterations ran on (0: none)


@dataclass
class ClusterState:
    """All k clusters, indexed by cluster id (0..k-1). A cluster whose members all left keeps its
    anchor (a new row near it revives it with the same id) but has no proxy while empty."""

    anchors: np.ndarray  # (k, d) float32
    centroids: np.ndarray  # (k, d) float32; an empty cluster's is its anchor
    proxy_row_ids: list[str | None]
    member_row_ids: list[list[str]]  # members in input order
    member_sq_dist: list[list[float]]  # squared distance to the cluster's centroid
    fit: FitInfo

    @property
    def k(self) -> int:
        return self.anchors.shape[0]

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(m) for m in self.member_row_ids], dtype=np.int64)

    def labels_for(self, row_ids: Sequence[str]) -> np.ndarray:
        where = {r: c for c, ms in enumerate(self.member_row_ids) for r in ms}
        return np.array([where[r] for r in row_ids], dtype=np.int64)

    def inertia(self) -> float:
        return float(sum(sum(d) for d in self.member_sq_dist))

    # -- persistence: one Parquet file, fit info in its schema metadata (written atomically) --

    def save(self, path: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = self.anchors.shape[1]
        table = pa.table(
            {
                "cluster_id": pa.array(np.arange(self.k, dtype=np.int64)),
                "anchor": pa.FixedSizeListArray.from_arrays(pa.array(self.anchors.astype(np.float32).ravel()), d),
                "centroid": pa.FixedSizeListArray.from_arrays(pa.array(self.centroids.astype(np.float32).ravel()), d),
                "proxy_row_id": pa.array(self.proxy_row_ids, type=pa.string()),
                "members": pa.array(self.member_row_ids, type=pa.list_(pa.string())),
                "member_sq_dist": pa.array(self.member_sq_dist, type=pa.list_(pa.float64())),
            }
        ).replace_schema_metadata({STATE_META_KEY: json.dumps(asdict(self.fit))})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "ClusterState | None":
        """The saved state, or None if there is none. A file that cannot be read raises ValueError."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
            fit = FitInfo(**json.loads(table.schema.metadata[STATE_META_KEY.encode()]))
            cols = table.to_pydict()
            d = fit.dim
            return cls(
                anchors=np.asarray(table.column("anchor").combine_chunks().flatten(), dtype=np.float32).reshape(-1, d),
                centroids=np.asarray(table.column("centroid").combine_chunks().flatten(), dtype=np.float32).reshape(
                    -1, d
                ),
                proxy_row_ids=cols["proxy_row_id"],
                member_row_ids=cols["members"],
                member_sq_dist=cols["member_sq_dist"],
                fit=fit,
            )
        except Exception as exc:  # noqa: BLE001 (any damage means: cannot trust it)
            raise ValueError(f"{path}: cannot read the saved clustering ({type(exc).__name__}: {exc})") from exc


STATE_META_KEY = "shed_pipeline.cluster_fit"


def _sq_to(x64: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x64 - np.asarray(c, dtype=np.float32).astype(np.float64)) ** 2).sum(-1)


def _summarise(
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


# Entries of a (rows x anchors) float64 block in nearest_anchor: 2^24 is 128 MiB, whatever K is.
ANCHOR_BLOCK_ENTRIES = 1 << 24
SEARCH_ROWS = 65_536  # rows per float32 search in nearest_anchor


def _nearest_float64(xs: np.ndarray, a: np.ndarray, a_sq: np.ndarray) -> np.ndarray:
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
        index = _flat_index(a32)
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
                lab[rows] = _nearest_float64(xs[rows].astype(np.float64), a, a_sq)
        else:
            lab = _nearest_float64(xs.astype(np.float64), a, a_sq)
        labels[s : s + len(xs)] = lab
        # Exact distances to the chosen anchor (the expansions above only pick it).
        for t in range(0, len(xs), chunk):
            part = xs[t : t + chunk]
            dist[s + t : s + t + len(part)] = ((part.astype(np.float64) - a[lab[t : t + chunk]]) ** 2).sum(1)
    return labels, dist


def _rows64(x: np.ndarray, idx) -> np.ndarray:
    return np.asarray(x[idx], dtype=np.float64)


def _sq_dist_to(
    x: np.ndarray, idx: np.ndarray, centres: np.ndarray, labels: np.ndarray, chunk: int = _CHUNK
) -> np.ndarray:
    """Squared distance of rows x[idx] to centres[labels] (float32 centres), in float64 blocks."""
    c64 = np.asarray(centres, dtype=np.float32).astype(np.float64)
    out = np.empty(len(idx), dtype=np.float64)
    for s in range(0, len(idx), chunk):
        out[s : s + chunk] = ((_rows64(x, idx[s : s + chunk]) - c64[labels[s : s + chunk]]) ** 2).sum(1)
    return out


def clusters_from_anchors(row_ids: Sequence[str], x: np.ndarray, anchors: np.ndarray, fit: FitInfo) -> ClusterState:
    """From scratch: every row to its nearest anchor, then each cluster's centroid and proxy."""
    labels, _ = nearest_anchor(x, anchors)
    return _clusters_from_labels(row_ids, x, anchors, labels, fit)


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
            state.centroids[c], state.proxy_row_ids[c], state.member_row_ids[c], state.member_sq_dist[c] = _summarise(
                idx, row_ids, x
            )
    return state


def _fit_id(anchors: np.ndarray, salt: str) -> str:
    h = hashlib.sha256(np.ascontiguousarray(anchors, dtype=np.float32).tobytes())
    h.update(salt.encode())
    return h.hexdigest()[:16]


def fit_clusters(
    row_ids: Sequence[str],
    x: np.ndarray,
    k: int,
    seed: int,
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


@dataclass
class DriftRule:
    """When a refresh re-fits instead: too many rows changed since the fit, or rows sit much
    farther from their anchors than at fit time (the anchors no longer describe the data)."""

    max_churn: float = 0.25  # (rows joined + rows left since the fit) / rows at the fit
    max_distance_rise: float = 0.10  # relative rise of the mean squared distance to the anchors


@dataclass
class ClusterUpdate:
    state: ClusterState
    full_refit: bool
    reason: str  # why a full fit ran, or why a refresh was enough
    affected: list[int]  # cluster ids whose membership changed (all non-empty ones on a full fit)
    rows_new: int  # rows not in the previous clustering
    rows_removed: int  # previous rows no longer present
    churn: float | None = None
    distance_rise: float | None = None


def update_clusters(
    previous: ClusterState | None,
    row_ids: Sequence[str],
    x: np.ndarray,
    n_clusters: int | None,
    seed: int,
    device: str = "cpu",
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-4,
    rule: DriftRule | None = None,
    force_refit: bool = False,
    fit_salt: str = "",
    log: Log = silent,
    warm_start: float = 0.0,
) -> ClusterUpdate:
    """Refresh `previous` with the current rows, or fit from scratch when the drift rule (or the
    caller, or a settings change) says so. `n_clusters` None keeps the previous k, or picks
    `default_n_clusters` on a full fit."""
    rule = rule or DriftRule()
    n = len(row_ids)
    check_warm_start(warm_start)
    reason = _refit_reason(previous, row_ids, x, n_clusters, seed, max_iter, tol, force_refit, warm_start)
    new_ids: list[int] = []
    churn = rise = None
    if reason is None:
        prev = previous
        assert prev is not None
        known = {r: c for c, ms in enumerate(prev.member_row_ids) for r in ms}  # row -> its cluster
        current = set(row_ids)
        new_ids = [i for i, r in enumerate(row_ids) if r not in known]
        left = [r for r in known if r not in current]
        churn = (prev.fit.rows_joined + len(new_ids) + prev.fit.rows_left + len(left)) / max(prev.fit.rows_at_fit, 1)
        labels = np.array([known.get(r, -1) for r in row_ids], dtype=np.int64)
        if new_ids:
            labels[new_ids], _ = nearest_anchor(x[new_ids], prev.anchors)
        msd = float(_sq_dist_to(x, np.arange(n), prev.anchors, labels).mean())
        rise = msd / prev.fit.anchor_msd_at_fit - 1.0 if prev.fit.anchor_msd_at_fit > 0 else 0.0
        if churn > rule.max_churn:
            reason = f"{churn:.1%} of rows changed since the last fit (limit {rule.max_churn:.0%})"
        elif rise > rule.max_distance_rise:
            reason = f"rows sit {rise:.1%} farther from their centroids than at the last fit (limit {rule.max_distance_rise:.0%})"
    if reason is not None:
        k = n_clusters or default_n_clusters(n)  # as a fresh run would choose: a re-fit equals a fresh run
        if k > n:
            raise ValueError(f"n_clusters={k} exceeds the {n} pool rows")
        state = fit_clusters(
            row_ids,
            x,
            k,
            seed=seed,
            device=device,
            max_iter=max_iter,
            tol=tol,
            salt=fit_salt,
            log=log,
            warm_start=warm_start,
        )
        affected = [c for c in range(state.k) if state.member_row_ids[c]]
        old = set() if previous is None else {r for ms in previous.member_row_ids for r in ms}
        return ClusterUpdate(
            state, True, reason, affected, sum(r not in old for r in row_ids), len(old - set(row_ids)), churn, rise
        )

    # Refresh: rebuild member lists in input order; recompute only the affected clusters.
    k = prev.k
    affected_set = {int(labels[i]) for i in new_ids} | {known[r] for r in left}
    state = ClusterState(
        anchors=prev.anchors,
        centroids=prev.centroids.copy(),
        proxy_row_ids=list(prev.proxy_row_ids),
        member_row_ids=[[] for _ in range(k)],
        member_sq_dist=[[] for _ in range(k)],
        fit=FitInfo(
            **{
                **asdict(prev.fit),
                "rows_joined": prev.fit.rows_joined + len(new_ids),
                "rows_left": prev.fit.rows_left + len(left),
            }
        ),
    )
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    for c in range(k):
        idx = order[bounds[c] : bounds[c + 1]]
        if c in affected_set:
            if len(idx):
                state.centroids[c], state.proxy_row_ids[c], state.member_row_ids[c], state.member_sq_dist[c] = (
                    _summarise(idx, row_ids, x)
                )
            else:
                state.centroids[c], state.proxy_row_ids[c] = prev.anchors[c], None
        else:
            # Unchanged membership: same centroid and proxy; members follow the current input order.
            state.member_row_ids[c] = [row_ids[i] for i in idx]
            old = dict(zip(prev.member_row_ids[c], prev.member_sq_dist[c], strict=True))
            state.member_sq_dist[c] = [old[r] for r in state.member_row_ids[c]]
    why = (
        "no change since the last run"
        if not affected_set
        else f"{len(new_ids)} new and {len(left)} removed rows; churn {churn:.1%} and distance rise {rise:+.1%} are within the drift rule"
    )
    return ClusterUpdate(state, False, why, sorted(affected_set), len(new_ids), len(left), churn, rise)


def _refit_reason(
    previous: ClusterState | None,
    row_ids: Sequence[str],
    x: np.ndarray,
    n_clusters: int | None,
    seed: int,
    max_iter: int,
    tol: float,
    force: bool,
    warm_start: float = 0.0,
) -> str | None:
    if force:
        return "a full re-fit was asked for"
    if previous is None:
        return "no previous clustering"
    f = previous.fit
    if f.dim != x.shape[1]:
        return f"embedding dimension changed ({f.dim} -> {x.shape[1]})"
    if n_clusters is not None and n_clusters != f.k:
        return f"n_clusters changed ({f.k} -> {n_clusters})"
    if (f.seed, f.max_iter, f.tol, f.warm_start) != (int(seed), max_iter, tol, float(warm_start)):
        return "k-means settings (seed, max_iter, tol, warm_start) changed"
    pos = {r: i for i, r in enumerate(row_ids)}
    kept = [
        (pos[r], c, d)
        for c, (ms, ds) in enumerate(zip(previous.member_row_ids, previous.member_sq_dist, strict=True))
        for r, d in zip(ms, ds, strict=True)
        if r in pos
    ]
    if not kept:
        return "no rows in common with the previous clustering"
    idx = np.array([p for p, _, _ in kept])
    cl = np.array([c for _, c, _ in kept])
    stored = np.array([d for _, _, d in kept])
    now = _sq_dist_to(x, idx, previous.centroids, cl)
    if not np.allclose(now, stored, rtol=1e-6, atol=1e-9):
        return "embeddings of existing rows changed (another embedding model?)"
    return None


def normalized_mutual_info(labels_a: Sequence, labels_b: Sequence) -> float:
    """NMI with arithmetic-mean normalisation (scikit-learn's default)."""
    a = np.unique(np.asarray(labels_a), return_inverse=True)[1]
    b = np.unique(np.asarray(labels_b), return_inverse=True)[1]
    n = len(a)
    if n == 0:
        return 0.0
    cont = np.zeros((a.max() + 1, b.max() + 1), dtype=np.float64)
    np.add.at(cont, (a, b), 1.0)
    pa, pb, pab = cont.sum(1) / n, cont.sum(0) / n, cont / n
    nz = pab > 0
    mi = float((pab[nz] * np.log(pab[nz] / (pa[:, None] * pb[None, :])[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0.0 and hb == 0.0:
        return 1.0
    denom = (ha + hb) / 2
    return max(0.0, mi / denom) if denom > 0 else 0.0
