"""Choosing the curated subset from scored clusters: QOCS, QWCS (SHED) and a random baseline.

Every selected row comes with its draw order and a human-readable reason, stored in the lineage DB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

METHODS = ("qocs", "qwcs", "random")


@dataclass
class Selection:
    row_id: str
    cluster_id: int
    draw_order: int  # 0-based position in the draw sequence
    reason: str


def target_size(pool_size: int, fraction: float | None, size: int | None) -> int:
    """Rows to select: an explicit count, else a fraction of the pool (rounded, at least 1)."""
    if size is not None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        if size > pool_size:
            raise ValueError(f"size {size} exceeds the pool's {pool_size} rows")
        return int(size)
    if fraction is None or not (0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(pool_size, int(round(fraction * pool_size))))


def qocs(cluster_ids: Sequence[int], scores: Sequence[float], members: Sequence[Sequence[str]], n: int) -> list[Selection]:
    """Quality-ordered cluster sampling: whole clusters by descending score (ties: lower id first),
    members in file order, until n rows; the last cluster is truncated."""
    order = sorted(range(len(cluster_ids)), key=lambda c: (-float(scores[c]), int(cluster_ids[c])))
    out: list[Selection] = []
    for rank, c in enumerate(order, start=1):
        room = n - len(out)
        if room <= 0:
            break
        take = list(members[c])[:room]
        whole = len(take) == len(members[c])
        for rid in take:
            out.append(
                Selection(
                    rid,
                    int(cluster_ids[c]),
                    len(out),
                    f"qocs: cluster {int(cluster_ids[c])} ranked {rank}/{len(order)} by proxy score {float(scores[c]):.6g}; "
                    + ("whole cluster taken" if whole else f"first {len(take)} of {len(members[c])} members (target reached)"),
                )
            )
    return out


def qwcs_weights(scores: Sequence[float], temperature: float) -> np.ndarray:
    """w_c = exp(S_c / T) / sum exp(S_c' / T): SHED's softmax with beta = 1 / T."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.asarray(scores, dtype=np.float64) / temperature
    z -= z.max()
    w = np.exp(z)
    return w / w.sum()


def auto_temperature(scores: Sequence[float]) -> float:
    """Default temperature: the scores' standard deviation, so weights span a few e-folds whatever
    the utility's scale (SHED's beta = 1 on scores of ~0.01 is nearly uniform)."""
    s = float(np.std(np.asarray(scores, dtype=np.float64)))
    return s if s > 0 else 1.0


def qwcs(cluster_ids: Sequence[int], scores: Sequence[float], members: Sequence[Sequence[str]], n: int, temperature: float, seed: int) -> list[Selection]:
    """Quality-weighted cluster sampling: n draws; each picks a cluster by softmax weight and a random
    unused member of it. An exhausted cluster is re-drawn, i.e. weights renormalise over the rest."""
    total = sum(len(m) for m in members)
    if n > total:
        raise ValueError(f"cannot draw {n} rows from {total}")
    w = qwcs_weights(scores, temperature)
    rng = np.random.default_rng(seed)
    remaining = [list(m) for m in members]
    live = np.array([len(m) > 0 for m in remaining])
    out: list[Selection] = []
    while len(out) < n:
        p = np.where(live, w, 0.0)
        p_sum = p.sum()
        if p_sum <= 0:  # weights underflowed on every live cluster: fall back to uniform over them
            p = live.astype(np.float64)
            p_sum = p.sum()
        c = int(rng.choice(len(p), p=p / p_sum))
        j = int(rng.integers(len(remaining[c])))
        rid = remaining[c].pop(j)
        if not remaining[c]:
            live[c] = False
        out.append(Selection(rid, int(cluster_ids[c]), len(out), f"qwcs: draw {len(out) + 1}, cluster {int(cluster_ids[c])} (score {float(scores[c]):.6g}, weight {w[c]:.4g}, T={temperature:.4g})"))
    return out


def random_subset(row_ids: Sequence[str], cluster_of: dict[str, int], n: int, seed: int) -> list[Selection]:
    """Uniform sample without replacement: the baseline every curated subset must beat."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(row_ids), size=n, replace=False)
    return [Selection(row_ids[i], cluster_of.get(row_ids[i], -1), d, f"random: uniform draw {d + 1} of {n} (seed {seed})") for d, i in enumerate(idx)]


def select(method: str, cluster_ids, scores, members, n: int, seed: int, temperature: float | None = None) -> list[Selection]:
    if method == "qocs":
        return qocs(cluster_ids, scores, members, n)
    if method == "qwcs":
        t = temperature if temperature is not None else auto_temperature(scores)
        return qwcs(cluster_ids, scores, members, n, t, seed)
    if method == "random":
        row_ids = [r for m in members for r in m]
        cluster_of = {r: int(cluster_ids[c]) for c, m in enumerate(members) for r in m}
        return random_subset(row_ids, cluster_of, n, seed)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def is_finite_scores(scores: Sequence[float]) -> bool:
    return all(math.isfinite(float(s)) for s in scores)
