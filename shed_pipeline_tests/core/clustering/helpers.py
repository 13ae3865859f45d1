"""Test data and oracles shared by the clustering tests: Gaussian blobs, row ids, a brute-force
clustering from anchors, and a comparison of two cluster states."""

import numpy as np

from shed_pipeline.core.clustering import ClusterState


def blobs(n=600, k=6, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


def ids_for(n, prefix="row"):
    return [f"{prefix}{i:05d}" for i in range(n)]


def brute_force_clusters(row_ids, x, anchors):
    """Oracle: nearest anchor by direct distance, centroid = member mean, proxy = nearest member."""
    x64 = x.astype(np.float64)
    a = anchors.astype(np.float64)
    labels = np.array([int(np.argmin([((r - c) ** 2).sum() for c in a])) for r in x64])
    out = {}
    for c in range(len(a)):
        members = [i for i in range(len(x)) if labels[i] == c]
        if not members:
            out[c] = None
            continue
        centroid = x64[sorted(members, key=lambda i: row_ids[i])].mean(0).astype(np.float32).astype(np.float64)
        proxy = min(members, key=lambda i: (((x64[i] - centroid) ** 2).sum(), row_ids[i]))
        out[c] = ([row_ids[i] for i in members], row_ids[proxy])
    return out


def assert_same_state(a: ClusterState, b: ClusterState):
    np.testing.assert_array_equal(a.anchors, b.anchors)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert a.proxy_row_ids == b.proxy_row_ids
    assert a.member_row_ids == b.member_row_ids
    np.testing.assert_allclose(
        np.concatenate([np.array(d) for d in a.member_sq_dist if d]),
        np.concatenate([np.array(d) for d in b.member_sq_dist if d]),
        rtol=1e-12,
    )
