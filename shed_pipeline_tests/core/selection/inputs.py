"""SelectionInputs for tests, from clusters given as (ids, scores, members) like SHED's scripts."""

from __future__ import annotations

import numpy as np

from shed_pipeline.core.selection import ClusterInfo, SelectionInputs


def make_inputs(ids, scores, members, n=0, seed=0, outputs=None, vectors=None, row_values=None, extra_rows=()):
    """Pool = the members cluster after cluster, then `extra_rows` (in no cluster)."""
    row_ids = [r for m in members for r in m] + list(extra_rows)
    clusters = [
        ClusterInfo(int(c), None if s is None else float(s), tuple(m))
        for c, s, m in zip(ids, scores, members, strict=True)
    ]
    cluster_of = {r: int(c) for c, m in zip(ids, members, strict=True) for r in m}
    outputs = list(outputs) if outputs is not None else [""] * len(row_ids)
    vectors = (
        np.asarray(vectors, dtype=np.float32) if vectors is not None else np.zeros((len(row_ids), 2), dtype=np.float32)
    )
    return SelectionInputs(row_ids, cluster_of, clusters, outputs, vectors, n=n, seed=seed, row_values=row_values or {})


def run(method, inputs, **settings):
    from shed_pipeline.core.selection import METHODS

    strategy, s = METHODS.configure(method, settings)
    return strategy.run(inputs, s)


def unit_vectors(n, dim, seed):
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
