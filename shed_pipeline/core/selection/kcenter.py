"""kcenter: greedy k-center (farthest-first traversal) on the prompt embeddings: diversity only.

The first centre is a seeded random pool row; each next centre is the row farthest (Euclidean, on the
normalised embeddings) from its nearest centre so far, ties to the earlier row in source order. The
distance at pick is the covering radius of the centres before it; the greedy radius is within twice
the optimum (Gonzalez 1985). Each step updates every row's distance to its nearest centre in chunks:
O(pool) memory, never a pool x pool matrix; O(n * pool * dim) time in all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shed_pipeline.core.progress import Progress
from shed_pipeline.core.selection.base import Selection, SelectionInputs
from shed_pipeline.core.strategies import Strategy

CHUNK_ROWS = 65_536
NEAR_SQ = 1e-3  # squared distances below this are recomputed exactly


@dataclass(frozen=True)
class KcenterSettings:
    pass


@dataclass
class KCenters:
    indices: list[int]  # pool positions, in pick order
    pick_distances: list[float]  # each centre's distance to the nearest earlier one (nan for the first)
    radius: float  # max over pool rows of the distance to the nearest centre


def distances_to(vectors: np.ndarray, sq_norms: np.ndarray, i: int, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Euclidean distance of every row to row i, chunk by chunk: sqrt(|x|^2 + |c|^2 - 2 x.c) with a
    float32 product (fast) and float64 norms; where that difference is small, rounding dominates it
    (a copy of row i would land ~1e-4 away), so those rows get the exact sum of squared differences."""
    out = np.empty(len(vectors), dtype=np.float64)
    c = vectors[i]
    for a in range(0, len(vectors), chunk_rows):
        chunk = vectors[a : a + chunk_rows]
        sq = sq_norms[a : a + chunk_rows] + sq_norms[i] - 2.0 * (chunk @ c).astype(np.float64)
        near = np.flatnonzero(sq < NEAR_SQ)
        if near.size:
            diff = chunk[near].astype(np.float64) - c.astype(np.float64)
            sq[near] = np.einsum("ij,ij->i", diff, diff)
        out[a : a + chunk_rows] = np.sqrt(np.maximum(sq, 0.0))
    return out


def greedy_k_center(vectors: np.ndarray, k: int, seed: int, log=None, chunk_rows: int = CHUNK_ROWS) -> KCenters:
    n_rows = len(vectors)
    if not 1 <= k <= n_rows:
        raise ValueError(f"kcenter: cannot pick {k} centres from {n_rows} rows")
    first = int(np.random.default_rng(seed).integers(n_rows))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    sq_norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    nearest = distances_to(vectors, sq_norms, first, chunk_rows)
    nearest[first] = -1.0  # a chosen row is never picked again
    picks, dists = [first], [float("nan")]
    progress = Progress(k, "kcenter", log, unit="centres") if log else None
    if progress:
        progress.advance()
    for _ in range(1, k):
        i = int(np.argmax(nearest))
        picks.append(i)
        dists.append(float(nearest[i]))
        np.minimum(nearest, distances_to(vectors, sq_norms, i, chunk_rows), out=nearest)
        nearest[i] = -1.0  # earlier picks stay at -1 under the minimum
        if progress:
            progress.advance()
    nearest[picks] = 0.0
    return KCenters(picks, dists, float(nearest.max()))


def run(inputs: SelectionInputs, settings: KcenterSettings) -> list[Selection]:
    centres = greedy_k_center(np.asarray(inputs.vectors), inputs.n, inputs.seed, inputs.log)
    out = []
    for d, (i, dist) in enumerate(zip(centres.indices, centres.pick_distances, strict=True)):
        rid = inputs.row_ids[i]
        if d == 0:
            reason = f"kcenter: first centre, a random row (seed {inputs.seed})"
        else:
            reason = (
                f"kcenter: centre {d + 1} of {inputs.n}, the row farthest from the earlier centres (distance "
                f"{dist:.4g} to the nearest)"
            )
        out.append(Selection(rid, int(inputs.cluster_of.get(rid, -1)), d, reason))
    return out


STRATEGY = Strategy(
    "kcenter", "greedy k-center (farthest first) on the prompt embeddings: diversity only", KcenterSettings, run
)
