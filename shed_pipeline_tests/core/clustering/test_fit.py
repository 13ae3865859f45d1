import numpy as np

from shed_pipeline.core.clustering import FitInfo, clusters_from_anchors, default_n_clusters, fit_clusters
from shed_pipeline_tests.core.clustering.helpers import assert_same_state, blobs, brute_force_clusters, ids_for


def test_default_cluster_count():
    assert default_n_clusters(8000) == 400 and default_n_clusters(10) == 2 and default_n_clusters(10**7) == 3000


def test_fit_numbers_clusters_by_proxy_and_proxies_are_nearest_members():
    x, _ = blobs(n=300, k=5, seed=1)
    ids = ids_for(len(x))
    s = fit_clusters(ids, x, 5, seed=0)
    assert s.proxy_row_ids == sorted(s.proxy_row_ids)
    oracle = brute_force_clusters(ids, x, s.anchors)
    for c in range(5):
        assert (s.member_row_ids[c], s.proxy_row_ids[c]) == oracle[c]
    assert int(s.sizes.sum()) == len(x)
    # Same input, same seed: the same state and fit id.
    assert_same_state(s, fit_clusters(ids, x, 5, seed=0))
    assert fit_clusters(ids, x, 5, seed=0).fit.fit_id == s.fit.fit_id
    assert fit_clusters(ids, x, 5, seed=0, salt="other validation").fit.fit_id != s.fit.fit_id


def test_proxy_ties_go_to_the_smaller_row_id():
    x = np.array([[1.0, 0], [-1.0, 0], [0, 5.0]])
    fit = FitInfo(
        fit_id="f",
        k=2,
        seed=0,
        max_iter=100,
        tol=1e-4,
        dim=2,
        rows_at_fit=3,
        anchor_msd_at_fit=0.0,
        n_iter=1,
        converged=True,
    )
    s = clusters_from_anchors(["b", "a", "c"], x, np.array([[0.0, 0], [0, 5.0]]), fit)
    assert s.proxy_row_ids == ["a", "c"] and s.member_row_ids == [["b", "a"], ["c"]]
