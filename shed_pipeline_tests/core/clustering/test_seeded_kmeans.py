import numpy as np
import pytest
from sklearn.cluster import KMeans

from shed_pipeline.core.clustering import kmeans, normalized_mutual_info, seeded_kmeans
from shed_pipeline_tests.core.clustering.helpers import blobs


def test_kmeans_matches_sklearn_inertia_and_recovers_blobs():
    x, truth = blobs()
    ours = kmeans(x, 6, seed=0)
    ref = KMeans(6, n_init=1, random_state=0).fit(x)
    assert ours.inertia <= ref.inertia_ * 1.001
    assert normalized_mutual_info(truth, ours.labels) > 0.99
    # Inertia is what it says: sum of squared distances to the assigned centroid.
    assert ours.inertia == pytest.approx(((x - ours.centroids[ours.labels]) ** 2).sum(), rel=1e-4)


def test_kmeans_is_deterministic_per_seed():
    x, _ = blobs(seed=3)
    a, b = kmeans(x, 8, seed=5), kmeans(x, 8, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_kmeans_rejects_more_clusters_than_rows():
    with pytest.raises(ValueError, match="cannot make"):
        kmeans(np.zeros((3, 2)), 4, seed=0)


def test_the_device_path_in_small_distance_blocks_equals_one_block(monkeypatch):
    """The torch (GPU) Lloyd iterations compute distances a block of rows at a time, so memory does
    not grow with rows x centres; blocks of one row give the same centroids as one block."""
    x, _ = blobs(seed=4)
    start = x[:: len(x) // 6][:6].astype(np.float64)
    whole = seeded_kmeans.lloyd_torch(x, start, 50, 1e-6, device="cpu", log=lambda _m: None)
    monkeypatch.setattr(seeded_kmeans, "TORCH_BLOCK_ENTRIES", 6)  # one row per block at k = 6
    blocked = seeded_kmeans.lloyd_torch(x, start, 50, 1e-6, device="cpu", log=lambda _m: None)
    np.testing.assert_array_equal(blocked[0], whole[0])
    assert blocked[1:] == whole[1:]
    # And the CPU path (faiss) finds the same clustering from the same start.
    cpu = seeded_kmeans.lloyd_cpu(x, start, 50, 1e-6, lambda _m: None)
    np.testing.assert_allclose(cpu[0], whole[0], atol=1e-4)


def _plain_lloyd(x, centroids, max_iter, tol_abs):
    """The oracle: every row to its nearest centroid (float64 brute force) every iteration."""
    x64 = x.astype(np.float64)
    for it in range(1, max_iter + 1):
        labels = ((x64[:, None, :] - centroids[None, :, :]) ** 2).sum(-1).argmin(1)
        counts = np.bincount(labels, minlength=len(centroids))
        assert counts.min() > 0  # the oracle does not re-seed empty clusters: the data must not need it
        new = np.stack([x64[labels == c].mean(0) for c in range(len(centroids))])
        shift = float(((new - centroids) ** 2).sum())
        centroids = new
        if shift <= tol_abs:
            return centroids, it, True
    return centroids, max_iter, False


def test_lloyd_iterations_on_faiss_give_the_float64_oracles_centroids():
    """faiss's float32 nearest-centroid search does not change an assignment on data without exact
    ties: the iterations, and the centroids after them, are float64 brute force's."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(40, 16))
    x = (centres[rng.integers(40, size=3000)] + rng.normal(scale=0.6, size=(3000, 16))).astype(np.float32)
    start = x[rng.choice(3000, size=40, replace=False)].astype(np.float64)
    got, it, converged = seeded_kmeans.lloyd_cpu(x, start.copy(), 60, 1e-10, lambda _m: None)
    want, want_it, want_converged = _plain_lloyd(x, start.copy(), 60, 1e-10)
    assert (it, converged) == (want_it, want_converged) and it > 5
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_a_warm_start_iterates_on_part_of_the_training_rows_then_on_all_and_stays_close():
    x, truth = blobs(n=4000, k=8, seed=7)
    full = kmeans(x, 8, seed=2)
    warm = kmeans(x, 8, seed=2, warm_start=0.25)
    again = kmeans(x, 8, seed=2, warm_start=0.25)
    np.testing.assert_array_equal(warm.centroids, again.centroids)  # seeded: the same bytes
    assert (
        warm.rows_trained == full.rows_trained == 192 * 8
        and warm.rows_warm_start == 192 * 8 // 4
        and full.rows_warm_start == 0
    )
    assert warm.inertia <= full.inertia * 1.01 and normalized_mutual_info(truth, warm.labels) > 0.99
    off = kmeans(x, 8, seed=2, warm_start=0.0)  # 0 is the default path, draw for draw
    np.testing.assert_array_equal(off.centroids, full.centroids)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="warm_start must be a fraction of the training rows in \\[0, 1\\)"):
            kmeans(x, 8, seed=2, warm_start=bad)
