"""Near-duplicate removal against a brute-force pairwise check on small data."""

import numpy as np
import pytest

from shed_pipeline.core.dedup import deduplicate, twins
from shed_pipeline_tests.core.selection.inputs import make_inputs


def clustered_twins(seed, clusters=3, per=12, dim=8):
    """Unit vectors in clusters, with some rows near-copies (and copies of copies) of others."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(clusters * per, dim))
    for i in rng.choice(len(x), size=len(x) // 2, replace=False):
        j = int(rng.integers(len(x)))
        x[i] = x[j] + rng.normal(scale=rng.choice([0.02, 0.1, 0.3]), size=dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    members = [[f"r{c * per + k:03d}" for k in range(per)] for c in range(clusters)]
    return x.astype(np.float32), members


def brute_force(vectors, threshold):
    """Every pair at once: walk the rows in order, drop one whose best match among kept rows exceeds
    the threshold; its twin is that best match (first of equals)."""
    sims = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    kept, removed = [], []
    for i in range(len(vectors)):
        if kept:
            j = int(np.argmax(sims[i, kept]))
            if sims[i, kept[j]] > threshold:
                removed.append((i, kept[j], sims[i, kept[j]]))
                continue
        kept.append(i)
    return removed


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.9, 0.97])
def test_blockwise_removal_equals_the_brute_force_pairwise_check(seed, threshold):
    x, _ = clustered_twins(seed, clusters=1, per=40)
    expected = brute_force(x, threshold)
    assert expected  # the data has twins at this threshold
    for block, chunk in [(512, 4096), (7, 3), (1, 1)]:
        got = twins(x, threshold, block_rows=block, kept_chunk=chunk)
        assert [(r, k) for r, k, _ in got] == [(r, k) for r, k, _ in expected]
        assert [s for _, _, s in got] == pytest.approx([s for _, _, s in expected], abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_dedup_never_drops_both_twins_and_counts_balance(seed):
    x, members = clustered_twins(seed)
    inputs = make_inputs([5, 6, 7], [0.1, 0.2, 0.3], members, vectors=x)
    smaller, removed = deduplicate(inputs, 0.95)
    gone = {d.row_id for d in removed}
    assert removed and len(smaller.row_ids) + len(removed) == len(inputs.row_ids)
    assert all(d.kept_row_id not in gone and d.kept_row_id in smaller.row_ids for d in removed)
    assert all(d.similarity > 0.95 for d in removed)
    pos = {r: i for i, r in enumerate(inputs.row_ids)}
    for c in smaller.clusters:  # what stays is pairwise at most the threshold inside each cluster
        v = x[[pos[r] for r in c.members]].astype(np.float64)
        s = v @ v.T
        np.fill_diagonal(s, -1)
        assert s.max() <= 0.95
        assert {d.cluster_id for d in removed if d.kept_row_id in c.members} <= {c.cluster_id}
    # Everything stays aligned and in order.
    assert smaller.row_ids == [r for r in inputs.row_ids if r not in gone]
    assert np.array_equal(smaller.vectors, x[[pos[r] for r in smaller.row_ids]])
    assert [list(c.members) for c in smaller.clusters] == [[r for r in m if r not in gone] for m in members]


def test_twins_in_different_clusters_are_both_kept_and_the_keep_rule_can_follow_row_values():
    v = np.array([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0], [1.0, 0.001]], dtype=np.float32)  # a b d c
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    inputs = make_inputs([0, 1], [None, None], [["a", "b", "d"], ["c"]], vectors=v)
    _, removed = deduplicate(inputs, 0.99)
    assert [(d.row_id, d.kept_row_id, d.cluster_id) for d in removed] == [
        ("b", "a", 0)
    ]  # c is a's twin in another cluster
    inputs.row_values = {"knn_shapley": {"a": 0.1, "b": 0.5}}
    _, removed = deduplicate(inputs, 0.99, keep="knn_shapley")
    assert [(d.row_id, d.kept_row_id) for d in removed] == [("a", "b")]  # the better row stays
    with pytest.raises(ValueError, match="dedup_threshold must be a cosine similarity in \\(0, 1\\]"):
        deduplicate(inputs, 1.5)


def test_a_threshold_of_one_removes_every_exact_copy_whatever_the_rounding():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    copies = np.vstack([x, x])  # each vector twice: its cosine with itself is 1 only up to rounding
    removed = twins(copies, 1.0)
    assert sorted(r for r, _, _ in removed) == list(range(200, 400))
    assert all(k == r - 200 for r, k, _ in removed)
