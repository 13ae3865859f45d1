import numpy as np

from shed_pipeline.core.clustering import assignment, nearest_anchor
from shed_pipeline_tests.core.clustering.helpers import blobs


def test_nearest_anchor_in_blocks_bounded_by_the_anchor_count_gives_the_same_assignment(monkeypatch):
    """With tens of thousands of anchors a block of 4,096 rows would be gigabytes: the block shrinks
    to ANCHOR_BLOCK_ENTRIES; the rows' anchors and distances do not change (brute force)."""
    x, _ = blobs(seed=6)
    anchors = x[::7][:40]
    d = ((x[:, None, :].astype(np.float64) - anchors[None, :, :].astype(np.float64)) ** 2).sum(-1)
    monkeypatch.setattr(assignment, "ANCHOR_BLOCK_ENTRIES", 40 * 3)  # three rows a block
    labels, dist = nearest_anchor(x, anchors)
    np.testing.assert_array_equal(labels, d.argmin(1))
    np.testing.assert_allclose(dist, d.min(1), rtol=1e-12)


def _float64_oracle(x, anchors):
    """What nearest_anchor returned before its float32 search: the float64 expansion's argmin."""
    x64, a = x.astype(np.float64), anchors.astype(np.float32).astype(np.float64)
    return np.maximum((x64 * x64).sum(1)[:, None] - 2.0 * x64 @ a.T + (a * a).sum(1)[None, :], 0.0).argmin(1)


def test_the_float32_search_with_float64_rechecks_gives_the_float64_answer_on_near_ties(monkeypatch):
    """Rows a float32 search cannot settle (two anchors within its error bound of each other) are
    recomputed in float64; the labels then equal the float64 oracle's, exact ties included."""
    rng = np.random.default_rng(4)
    d = 48
    anchors = rng.normal(size=(60, d)).astype(np.float32)
    anchors[31] = anchors[7]  # a duplicated anchor: exact ties, to the lower index
    near = anchors[12] + np.float32(1e-5) * rng.normal(size=d).astype(np.float32)  # closer than float32 can tell
    anchors[40] = near
    x = rng.normal(size=(3000, d)).astype(np.float32)
    x[:100] = anchors[rng.integers(0, 60, size=100)] + np.float32(0.01) * rng.normal(size=(100, d)).astype(np.float32)
    x[100:150] = (anchors[12] + anchors[40]) / 2 + np.float32(1e-6) * rng.normal(size=(50, d)).astype(
        np.float32
    )  # about halfway between two almost equal anchors
    x[150:200] = anchors[7]
    x /= np.float32(3.0)
    anchors /= np.float32(3.0)
    searched = []
    real = assignment.nearest_float64
    monkeypatch.setattr(
        assignment, "nearest_float64", lambda xs, a, a_sq: searched.append(len(xs)) or real(xs, a, a_sq)
    )
    monkeypatch.setattr(assignment, "SEARCH_ROWS", 700)  # several search blocks
    labels, dist = nearest_anchor(x, anchors, chunk=64)
    np.testing.assert_array_equal(labels, _float64_oracle(x, anchors))
    assert 100 <= sum(searched) < 600  # the near-ties went to float64, the clear majority did not
    exact = ((x.astype(np.float64) - anchors.astype(np.float64)[labels]) ** 2).sum(1)
    np.testing.assert_array_equal(dist, exact)
    # Float64 rows and a single anchor take the float64 path throughout, with the same answers.
    searched.clear()
    np.testing.assert_array_equal(nearest_anchor(x.astype(np.float64), anchors)[0], labels)
    assert sum(searched) == len(x)
    assert (nearest_anchor(x, anchors[:1])[0] == 0).all()
