import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from shed_pipeline.core.clustering import assign_proxies, cluster_rows, default_n_clusters, kmeans, normalized_mutual_info


def blobs(n=600, k=6, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4, size=(k, d))
    labels = rng.integers(k, size=n)
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


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


def test_cluster_ids_are_stable_and_proxies_are_nearest_members():
    x, _ = blobs(n=300, k=5, seed=1)
    ids = [f"row{i:04d}" for i in range(len(x))]
    c = cluster_rows(ids, x, 5, seed=0)
    # Ids follow proxy row ids, so a different init order gives the same numbering.
    assert c.proxy_row_ids == sorted(c.proxy_row_ids)
    c2 = cluster_rows(ids, x, 5, seed=11)
    if sorted(map(sorted, c.member_row_ids)) == sorted(map(sorted, c2.member_row_ids)):
        assert c.member_row_ids == c2.member_row_ids and c.proxy_row_ids == c2.proxy_row_ids
    for cid in range(5):
        members = [i for i, lab in enumerate(c.labels) if lab == cid]
        assert [ids[i] for i in members] == c.member_row_ids[cid]  # input order
        d = ((x[members].astype(np.float64) - c.centroids[cid].astype(np.float64)) ** 2).sum(1)
        assert c.proxy_row_ids[cid] == ids[members[int(np.argmin(d))]]
    assert sum(c.sizes) == len(x)


def test_proxy_ties_go_to_the_smaller_row_id():
    x = np.array([[1.0, 0], [-1.0, 0], [0, 5.0]])
    proxies, members, _ = assign_proxies(["b", "a", "c"], x, np.array([[0.0, 0], [0, 5.0]]), np.array([0, 0, 1]))
    assert proxies == ["a", "c"] and members == [["b", "a"], ["c"]]


def test_nmi_matches_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.integers(5, size=200), rng.integers(7, size=200)
    assert normalized_mutual_info(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-10)
    assert normalized_mutual_info(a, a) == pytest.approx(1.0)


def test_default_cluster_count():
    assert default_n_clusters(8000) == 400 and default_n_clusters(10) == 2 and default_n_clusters(10**7) == 3000
