import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from shed_pipeline.core.clustering import (
    ClusterState,
    DriftRule,
    clusters_from_anchors,
    default_n_clusters,
    fit_clusters,
    kmeans,
    normalized_mutual_info,
    update_clusters,
)


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


def test_nmi_matches_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.integers(5, size=200), rng.integers(7, size=200)
    assert normalized_mutual_info(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-10)
    assert normalized_mutual_info(a, a) == pytest.approx(1.0)


def test_default_cluster_count():
    assert default_n_clusters(8000) == 400 and default_n_clusters(10) == 2 and default_n_clusters(10**7) == 3000


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
    from shed_pipeline.core.clustering import FitInfo

    x = np.array([[1.0, 0], [-1.0, 0], [0, 5.0]])
    fit = FitInfo("f", 2, 0, 100, 1e-4, 2, 3, 0.0, 1, True)
    s = clusters_from_anchors(["b", "a", "c"], x, np.array([[0.0, 0], [0, 5.0]]), fit)
    assert s.proxy_row_ids == ["a", "c"] and s.member_row_ids == [["b", "a"], ["c"]]


def test_refresh_after_append_touches_only_the_clusters_new_rows_join():
    x, _ = blobs(n=1000, k=8, d=12, seed=2)
    ids = ids_for(1000)
    first = update_clusters(None, ids[:990], x[:990], 40, seed=0)
    assert first.full_refit and first.reason == "no previous clustering"
    upd = update_clusters(first.state, ids, x, None, seed=0)
    assert not upd.full_refit and upd.rows_new == 10 and upd.rows_removed == 0
    joined = sorted({int(c) for c in upd.state.labels_for(ids[990:])})
    assert upd.affected == joined
    for c in range(upd.state.k):
        if c not in joined:
            assert upd.state.proxy_row_ids[c] == first.state.proxy_row_ids[c]
            np.testing.assert_array_equal(upd.state.centroids[c], first.state.centroids[c])
    # The refresh equals a from-scratch clustering given the same anchors...
    assert_same_state(upd.state, clusters_from_anchors(ids, x, first.state.anchors, upd.state.fit))
    # ...and the brute-force oracle.
    oracle = brute_force_clusters(ids, x, first.state.anchors)
    for c in range(upd.state.k):
        got = None if not upd.state.member_row_ids[c] else (upd.state.member_row_ids[c], upd.state.proxy_row_ids[c])
        assert got == oracle[c]
    assert upd.state.fit.rows_joined == 10 and upd.state.fit.fit_id == first.state.fit.fit_id


def test_refresh_with_nothing_changed_affects_nothing_and_keeps_everything():
    x, _ = blobs(n=400, seed=4)
    ids = ids_for(400)
    first = update_clusters(None, ids, x, 20, seed=1)
    again = update_clusters(first.state, ids, x, None, seed=1)
    assert not again.full_refit and again.affected == [] and again.rows_new == again.rows_removed == 0
    assert again.reason == "no change since the last run"
    assert_same_state(again.state, first.state)


def test_removed_rows_leave_their_cluster_and_an_emptied_cluster_revives_with_its_id(tmp_path):
    x, _ = blobs(n=300, k=5, seed=5)
    ids = ids_for(300)
    first = update_clusters(None, ids, x, 10, seed=0)
    c = int(np.argmin(first.state.sizes))
    gone = set(first.state.member_row_ids[c])
    keep = [i for i, r in enumerate(ids) if r not in gone]
    rule = DriftRule(max_churn=1.0, max_distance_rise=10.0)
    upd = update_clusters(first.state, [ids[i] for i in keep], x[keep], None, seed=0, rule=rule)
    assert not upd.full_refit and c in upd.affected and upd.rows_removed == len(gone)
    assert upd.state.proxy_row_ids[c] is None and upd.state.member_row_ids[c] == []
    # Survives a save/load round trip, then a returning row revives the same cluster id.
    upd.state.save(tmp_path / "clusters.parquet")
    loaded = ClusterState.load(tmp_path / "clusters.parquet")
    assert_same_state(loaded, upd.state)
    back = update_clusters(loaded, ids, x, None, seed=0, rule=rule)
    assert back.state.member_row_ids[c] and set(back.state.member_row_ids[c]) == gone
    assert_same_state(back.state, clusters_from_anchors(ids, x, first.state.anchors, back.state.fit))


def test_drift_rule_and_settings_changes_force_a_refit_that_equals_a_fresh_fit():
    x, _ = blobs(n=500, seed=6)
    ids = ids_for(500)
    first = update_clusters(None, ids[:300], x[:300], None, seed=0)
    grown = update_clusters(first.state, ids, x, None, seed=0)
    assert grown.full_refit and "of rows changed since the last fit" in grown.reason
    fresh = update_clusters(None, ids, x, None, seed=0)
    assert_same_state(grown.state, fresh.state)
    assert (
        update_clusters(first.state, ids[:300], x[:300], None, seed=0, force_refit=True).reason
        == "a full re-fit was asked for"
    )
    assert "n_clusters changed" in update_clusters(first.state, ids[:300], x[:300], 7, seed=0).reason
    assert "seed" in update_clusters(first.state, ids[:300], x[:300], None, seed=9).reason
    moved = x[:300] + 0.5
    assert "embeddings of existing rows changed" in update_clusters(first.state, ids[:300], moved, None, seed=0).reason
    assert "dimension" in update_clusters(first.state, ids[:300], x[:300, :4], None, seed=0).reason
    # A distance rise alone: new rows far from every anchor, few enough to stay under the churn limit.
    far = np.vstack([x[:300], x[300:310] * 40])
    drift = update_clusters(first.state, ids[:310], far, None, seed=0)
    assert drift.full_refit and "farther from their centroids" in drift.reason


def test_damaged_state_file_is_a_clear_error(tmp_path):
    assert ClusterState.load(tmp_path / "missing.parquet") is None
    bad = tmp_path / "clusters.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="cannot read the saved clustering"):
        ClusterState.load(bad)


def test_the_device_path_in_small_distance_blocks_equals_one_block(monkeypatch):
    """The torch (GPU) Lloyd iterations compute distances a block of rows at a time, so memory does
    not grow with rows x centres; blocks of one row give the same centroids as one block."""
    import shed_pipeline.core.clustering as clustering

    x, _ = blobs(seed=4)
    start = x[:: len(x) // 6][:6].astype(np.float64)
    whole = clustering._lloyd_torch(x, start, 50, 1e-6, "cpu", lambda _m: None)
    monkeypatch.setattr(clustering, "TORCH_BLOCK_ENTRIES", 6)  # one row per block at k = 6
    blocked = clustering._lloyd_torch(x, start, 50, 1e-6, "cpu", lambda _m: None)
    np.testing.assert_array_equal(blocked[0], whole[0])
    assert blocked[1:] == whole[1:]
    # And the CPU path (faiss) finds the same clustering from the same start.
    cpu = clustering._lloyd_cpu(x, start, 50, 1e-6, lambda _m: None)
    np.testing.assert_allclose(cpu[0], whole[0], atol=1e-4)


def test_nearest_anchor_in_blocks_bounded_by_the_anchor_count_gives_the_same_assignment(monkeypatch):
    """With tens of thousands of anchors a block of 4,096 rows would be gigabytes: the block shrinks
    to ANCHOR_BLOCK_ENTRIES; the rows' anchors and distances do not change (brute force)."""
    import shed_pipeline.core.clustering as clustering

    x, _ = blobs(seed=6)
    anchors = x[::7][:40]
    d = ((x[:, None, :].astype(np.float64) - anchors[None, :, :].astype(np.float64)) ** 2).sum(-1)
    monkeypatch.setattr(clustering, "ANCHOR_BLOCK_ENTRIES", 40 * 3)  # three rows a block
    labels, dist = clustering.nearest_anchor(x, anchors)
    np.testing.assert_array_equal(labels, d.argmin(1))
    np.testing.assert_allclose(dist, d.min(1), rtol=1e-12)


def _float64_oracle(x, anchors):
    """What nearest_anchor returned before its float32 search: the float64 expansion's argmin."""
    x64, a = x.astype(np.float64), anchors.astype(np.float32).astype(np.float64)
    return np.maximum((x64 * x64).sum(1)[:, None] - 2.0 * x64 @ a.T + (a * a).sum(1)[None, :], 0.0).argmin(1)


def test_the_float32_search_with_float64_rechecks_gives_the_float64_answer_on_near_ties(monkeypatch):
    """Rows a float32 search cannot settle (two anchors within its error bound of each other) are
    recomputed in float64; the labels then equal the float64 oracle's, exact ties included."""
    import shed_pipeline.core.clustering as clustering

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
    real = clustering._nearest_float64
    monkeypatch.setattr(
        clustering, "_nearest_float64", lambda xs, a, a_sq: searched.append(len(xs)) or real(xs, a, a_sq)
    )
    monkeypatch.setattr(clustering, "SEARCH_ROWS", 700)  # several search blocks
    labels, dist = clustering.nearest_anchor(x, anchors, chunk=64)
    np.testing.assert_array_equal(labels, _float64_oracle(x, anchors))
    assert 100 <= sum(searched) < 600  # the near-ties went to float64, the clear majority did not
    exact = ((x.astype(np.float64) - anchors.astype(np.float64)[labels]) ** 2).sum(1)
    np.testing.assert_array_equal(dist, exact)
    # Float64 rows and a single anchor take the float64 path throughout, with the same answers.
    searched.clear()
    np.testing.assert_array_equal(clustering.nearest_anchor(x.astype(np.float64), anchors)[0], labels)
    assert sum(searched) == len(x)
    assert (clustering.nearest_anchor(x, anchors[:1])[0] == 0).all()


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
    import shed_pipeline.core.clustering as clustering

    rng = np.random.default_rng(11)
    centres = rng.normal(size=(40, 16))
    x = (centres[rng.integers(40, size=3000)] + rng.normal(scale=0.6, size=(3000, 16))).astype(np.float32)
    start = x[rng.choice(3000, size=40, replace=False)].astype(np.float64)
    got, it, converged = clustering._lloyd_cpu(x, start.copy(), 60, 1e-10, lambda _m: None)
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


def test_changing_the_warm_start_refits():
    x, _ = blobs(n=500, seed=6)
    ids = ids_for(500)
    first = update_clusters(None, ids, x, None, seed=0)
    assert (
        update_clusters(first.state, ids, x, None, seed=0).reason != first.reason
        and not update_clusters(first.state, ids, x, None, seed=0).full_refit
    )
    warm = update_clusters(first.state, ids, x, None, seed=0, warm_start=0.5)
    assert warm.full_refit and "warm_start" in warm.reason and warm.state.fit.warm_start == 0.5
    assert not update_clusters(warm.state, ids, x, None, seed=0, warm_start=0.5).full_refit
