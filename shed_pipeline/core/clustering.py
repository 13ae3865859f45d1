"""Seeded k-means (greedy k-means++ init, Lloyd iterations) on a torch device, cluster proxies, NMI.

Cluster ids are stable: clusters are numbered in the order of their proxy's row id, so the same
input and seed give the same ids whatever order the initialisation found them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


def default_n_clusters(n_rows: int) -> int:
    """About 20 rows a cluster, SHED's own ratio (3,000 clusters for ~55k-70k rows), within [2, 3000]."""
    return int(min(3000, max(2, round(n_rows / 20))))


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d) float32
    labels: np.ndarray  # (n,) int64
    inertia: float
    n_iter: int
    converged: bool


def _sq_dists(x: torch.Tensor, c: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
    d = x_sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]
    return d.clamp_min_(0.0)


def _kmeans_pp(x: torch.Tensor, x_sq: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii; sklearn's variant): 2 + ln k candidate draws per centre."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centers = [first]
    closest = _sq_dists(x, x[first : first + 1], x_sq)[:, 0]
    pot = closest.sum()
    for _ in range(1, k):
        # Sample candidates proportionally to the current squared distance.
        probs = (closest / pot).double().cpu() if pot > 0 else torch.full((n,), 1.0 / n, dtype=torch.float64)
        cand = torch.multinomial(probs, trials, replacement=True, generator=gen).to(x.device)
        d_cand = _sq_dists(x, x[cand], x_sq)  # (n, trials)
        new_closest = torch.minimum(closest[:, None], d_cand)
        pots = new_closest.sum(0)
        best = int(torch.argmin(pots))
        centers.append(int(cand[best]))
        closest = new_closest[:, best]
        pot = pots[best]
    return x[torch.tensor(centers, device=x.device)].clone()


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int,
    max_iter: int = 100,
    tol: float = 1e-4,
    device: str = "cpu",
) -> KMeansResult:
    """Lloyd's k-means. `tol` is relative to the data's mean variance, as in scikit-learn.

    On the CPU the arithmetic is float64, so the result is the same on every run (byte-identical
    downstream subsets); on CUDA it is float32 for speed.
    """
    n = x.shape[0]
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if n < k:
        raise ValueError(f"cannot make {k} clusters from {n} rows")
    dtype = torch.float64 if device == "cpu" else torch.float32
    xt = torch.from_numpy(np.array(x, dtype=np.float64 if dtype == torch.float64 else np.float32)).to(device)  # a copy: input may be read-only
    x_sq = (xt * xt).sum(1)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    tol_abs = float(tol * xt.var(0).mean())
    centroids = _kmeans_pp(xt, x_sq, k, gen)
    labels = torch.zeros(n, dtype=torch.long, device=device)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is the iteration count reported after the loop)
        d = _sq_dists(xt, centroids, x_sq)
        labels = d.argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, xt)
        counts = torch.bincount(labels, minlength=k).to(dtype)
        new = sums / counts.clamp_min(1)[:, None]
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            # Re-seed empty clusters on the points farthest from their centre (deterministic).
            far = d.gather(1, labels[:, None])[:, 0].argsort(descending=True, stable=True)[: len(empty)]
            new[empty] = xt[far]
        shift = float(((new - centroids) ** 2).sum())
        centroids = new
        if shift <= tol_abs:
            converged = True
            break
    d = _sq_dists(xt, centroids, x_sq)
    labels = d.argmin(1)
    inertia = float(d.gather(1, labels[:, None]).sum())
    return KMeansResult(
        centroids=centroids.float().cpu().numpy(),
        labels=labels.cpu().numpy().astype(np.int64),
        inertia=inertia,
        n_iter=it,
        converged=converged,
    )


@dataclass
class Clustering:
    """Clusters with stable ids, their proxies (member nearest the centroid) and members."""

    cluster_ids: np.ndarray  # (k,) int64, 0..k-1
    centroids: np.ndarray  # (k, d)
    proxy_row_ids: list[str]
    member_row_ids: list[list[str]]  # members in input order
    member_sq_dist: list[list[float]]
    labels: np.ndarray  # (n,) cluster id of each input row
    inertia: float
    n_iter: int
    converged: bool

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(m) for m in self.member_row_ids], dtype=np.int64)


def assign_proxies(row_ids: Sequence[str], x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> tuple[list[str], list[list[str]], list[list[float]]]:
    """For each cluster: its proxy (the member nearest its centroid; ties to the smaller row id) and members."""
    k = centroids.shape[0]
    x64 = np.asarray(x, dtype=np.float64)
    c64 = np.asarray(centroids, dtype=np.float64)
    sq = ((x64 - c64[labels]) ** 2).sum(1)
    members: list[list[str]] = [[] for _ in range(k)]
    dists: list[list[float]] = [[] for _ in range(k)]
    for i, (rid, lab) in enumerate(zip(row_ids, labels, strict=False)):
        members[lab].append(rid)
        dists[lab].append(float(sq[i]))
    proxies = []
    for c in range(k):
        if not members[c]:
            raise ValueError(f"cluster {c} is empty")
        best = min(range(len(members[c])), key=lambda j: (dists[c][j], members[c][j]))
        proxies.append(members[c][best])
    return proxies, members, dists


def cluster_rows(row_ids: Sequence[str], x: np.ndarray, k: int, seed: int, device: str = "cpu", max_iter: int = 100, tol: float = 1e-4) -> Clustering:
    res = kmeans(x, k, seed=seed, max_iter=max_iter, tol=tol, device=device)
    proxies, members, dists = assign_proxies(row_ids, x, res.centroids, res.labels)
    # Renumber clusters by proxy row id: stable ids, independent of the order init found them.
    order = sorted(range(k), key=lambda c: proxies[c])
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return Clustering(
        cluster_ids=np.arange(k, dtype=np.int64),
        centroids=res.centroids[order],
        proxy_row_ids=[proxies[c] for c in order],
        member_row_ids=[members[c] for c in order],
        member_sq_dist=[dists[c] for c in order],
        labels=remap[res.labels],
        inertia=res.inertia,
        n_iter=res.n_iter,
        converged=res.converged,
    )


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
