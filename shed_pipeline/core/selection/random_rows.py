"""random: a uniform sample without replacement, the baseline every curated subset must beat.

The sample is drawn from the clusters' members listed cluster after cluster (the clusters asset's
order), so the same seed picks the same rows as earlier releases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shed_pipeline.core.selection.base import Selection, SelectionInputs
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class RandomSettings:
    pass


def run(inputs: SelectionInputs, settings: RandomSettings) -> list[Selection]:
    row_ids = [r for c in inputs.clusters for r in c.members]
    cluster_of = {r: c.cluster_id for c in inputs.clusters for r in c.members}
    n, seed = inputs.n, inputs.seed
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(row_ids), size=n, replace=False)
    return [
        Selection(
            row_ids[i], int(cluster_of.get(row_ids[i], -1)), d, f"random: uniform draw {d + 1} of {n} (seed {seed})"
        )
        for d, i in enumerate(idx)
    ]


STRATEGY = Strategy("random", "uniform random rows (seeded): the baseline", RandomSettings, run)
