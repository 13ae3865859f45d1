"""stratified: random rows in proportion to cluster sizes (balanced random over clusters).

Cluster c of size s_c out of N pool rows gets a quota of n * s_c / N rows, rounded by the largest
remainder: every cluster gets the floor, and the rows left over go one each to the clusters with the
largest fractional parts (exact integer arithmetic; ties broken by a seeded random order). Each
cluster's quota is a seeded uniform sample of its members. Rows are listed cluster by cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shed_pipeline.core.selection.base import Selection, SelectionInputs
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class StratifiedSettings:
    pass


def quotas(sizes: list[int], n: int, rng: np.random.Generator) -> list[int]:
    """Largest-remainder quotas of n rows over clusters of `sizes` (they sum to n)."""
    total = sum(sizes)
    if not 0 <= n <= total:
        raise ValueError(f"cannot take {n} rows from {total}")
    floor = [n * s // total for s in sizes]
    remainder = [n * s % total for s in sizes]  # the fractional parts, times total: exact ties
    tiebreak = rng.random(len(sizes))
    left = n - sum(floor)
    for c in sorted(range(len(sizes)), key=lambda c: (-remainder[c], tiebreak[c]))[:left]:
        floor[c] += 1
    return floor


def run(inputs: SelectionInputs, settings: StratifiedSettings) -> list[Selection]:
    rng = np.random.default_rng(inputs.seed)
    sizes = [len(c.members) for c in inputs.clusters]
    quota = quotas(sizes, inputs.n, rng)
    total = sum(sizes)
    out: list[Selection] = []
    for c, q in zip(inputs.clusters, quota, strict=True):
        if not q:
            continue
        picks = rng.choice(len(c.members), size=q, replace=False)
        exact = inputs.n * len(c.members) / total
        for k, i in enumerate(picks, start=1):
            reason = (
                f"stratified: cluster {c.cluster_id} ({len(c.members)} of {total} pool rows) gets {q} of {inputs.n} "
                f"rows ({exact:.3g} by share, largest remainder); random member {k} of {q} (seed {inputs.seed})"
            )
            out.append(Selection(c.members[int(i)], int(c.cluster_id), len(out), reason))
    return out


STRATEGY = Strategy(
    "stratified",
    "random rows in proportion to cluster sizes (largest-remainder quotas, seeded)",
    StratifiedSettings,
    run,
)
