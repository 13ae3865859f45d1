"""Near-duplicate removal before selection (SemDeDup-style: Abbas et al. 2023).

Inside each cluster, two rows are twins when the cosine similarity of their normalised prompt
embeddings exceeds `threshold`. Rule: walk the cluster's members in priority order (the clusters'
order, i.e. source order; or best first by a per-row value kind, see selection.base) and keep a row
unless it is a twin of a row already kept; a removed row names the kept row it is most similar to
(ties: the earlier kept row) and that similarity. Similarities are compared up to float rounding
(1e-6): a threshold of 1.0 removes exact duplicates of a prompt vector. So a removed row's twin is
always kept (never both twins go), the kept rows are pairwise at most `threshold` similar, and
kept + removed = pool.

Rows are compared block by block against the rows kept so far (a block x chunk matrix at a time), so
a 50,000-row cluster never builds a 50,000 x 50,000 matrix; time is O(m * kept * dim) per cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from shed_pipeline.core.progress import Progress
from shed_pipeline.core.selection.base import RANDOM, SOURCE, ClusterInfo, SelectionInputs, best_first

BLOCK_ROWS = 512  # rows compared at a time
# A vector's cosine with an equal vector is 1 only up to rounding (float32 embeddings in float64
# products land on either side of 1), so a threshold of 1.0 would catch half the exact copies.
ROUNDING = 1e-6
KEPT_CHUNK = 4096  # kept rows compared at a time: a block x chunk float64 matrix is 16 MiB


@dataclass(frozen=True)
class NearDuplicate:
    row_id: str
    kept_row_id: str
    cluster_id: int
    similarity: float


def check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError(f"dedup_threshold must be a cosine similarity in (0, 1], got {threshold}; 0.95 is typical")


def twins(
    vectors: np.ndarray,
    threshold: float,
    block_rows: int = BLOCK_ROWS,
    kept_chunk: int = KEPT_CHUNK,
    advance: Callable[[int], None] | None = None,
) -> list[tuple[int, int, float]]:
    """(removed, kept, similarity) positions of rows of one cluster, given in priority order;
    `advance(rows)` after each block (progress lines inside a large cluster)."""
    m, dim = vectors.shape
    kept = np.empty((m, dim), dtype=np.float64)  # the kept rows' vectors, in keep order
    kept_pos: list[int] = []
    removed: list[tuple[int, int, float]] = []
    for start in range(0, m, block_rows):
        block = np.asarray(vectors[start : start + block_rows], dtype=np.float64)
        # Each block row's most similar earlier-kept row (first of equals: the earlier one).
        best = np.full(len(block), -np.inf)
        arg = np.full(len(block), -1, dtype=np.int64)
        for a in range(0, len(kept_pos), kept_chunk):
            sims = block @ kept[a : min(a + kept_chunk, len(kept_pos))].T
            j = sims.argmax(axis=1)
            s = sims[np.arange(len(block)), j]
            better = s > best
            best[better], arg[better] = s[better], j[better] + a
        inside = block @ block.T
        kept_here: list[int] = []  # block positions kept so far
        for i in range(len(block)):
            b, twin = best[i], (kept_pos[arg[i]] if arg[i] >= 0 else -1)
            if kept_here:
                s = inside[i, kept_here]
                j = int(s.argmax())
                if s[j] > b:
                    b, twin = s[j], start + kept_here[j]
            if b > threshold - ROUNDING:
                removed.append((start + i, twin, float(b)))
            else:
                kept_here.append(i)
        for i in kept_here:
            kept[len(kept_pos)] = block[i]
            kept_pos.append(start + i)
        if advance:
            advance(len(block))
    return removed


def deduplicate(
    inputs: SelectionInputs, threshold: float, keep: str = SOURCE
) -> tuple[SelectionInputs, list[NearDuplicate]]:
    """The inputs without the near-duplicates (every order kept), and the rows removed."""
    check_threshold(threshold)
    if keep == RANDOM:
        raise ValueError(
            f"dedup_keep {RANDOM!r}: near-duplicates are kept by {SOURCE!r} order or a per-row value (e.g. knn_shapley)"
        )
    values = None if keep == SOURCE else inputs.values(keep)
    position = {r: i for i, r in enumerate(inputs.row_ids)}
    progress = Progress(len(inputs.row_ids), "near-duplicate removal", inputs.log)
    removed: list[NearDuplicate] = []
    for c in inputs.clusters:
        members = list(c.members) if values is None else best_first(c.members, keep, values)
        idx = np.fromiter((position[r] for r in members), dtype=np.int64, count=len(members))
        for r, k, s in twins(inputs.vectors[idx], threshold, advance=progress.advance):
            removed.append(NearDuplicate(members[r], members[k], int(c.cluster_id), s))
    gone = {d.row_id for d in removed}
    if not gone:
        return inputs, removed
    keep_rows = [i for i, r in enumerate(inputs.row_ids) if r not in gone]
    clusters = [
        ClusterInfo(c.cluster_id, c.score, tuple(r for r in c.members if r not in gone)) for c in inputs.clusters
    ]
    smaller = dataclasses.replace(
        inputs,
        row_ids=[inputs.row_ids[i] for i in keep_rows],
        outputs=[inputs.outputs[i] for i in keep_rows],
        vectors=inputs.vectors[keep_rows],
        clusters=[c for c in clusters if c.members],
    )
    return smaller, removed
