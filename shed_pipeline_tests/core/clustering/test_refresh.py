import numpy as np

from shed_pipeline.core.clustering import ClusterState, DriftRule, clusters_from_anchors, update_clusters
from shed_pipeline_tests.core.clustering.helpers import assert_same_state, blobs, brute_force_clusters, ids_for


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
