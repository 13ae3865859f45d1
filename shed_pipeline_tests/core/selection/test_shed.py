"""SHED's QOCS and QWCS, their row-refined member orders, and the coverage-aware variant."""

import math
from collections import Counter

import numpy as np
import pytest

from shed_pipeline.core.selection.qwcs import WeightTree, auto_temperature, qwcs_weights
from shed_pipeline_tests.core.selection.inputs import make_inputs, run

IDS = [0, 1, 2, 3]
SCORES = [0.1, 0.5, 0.3, 0.5]
MEMBERS = [["a1", "a2"], ["b1", "b2", "b3"], ["c1", "c2"], ["d1"]]
VALUES = {"knn_shapley": {"b1": 0.1, "b2": 0.9, "b3": 0.5, "c1": -1.0, "c2": 2.0, "d1": 0.0, "a1": 3.0}}  # a2: no value


def shed(n, seed=0, values=None):
    return make_inputs(IDS, SCORES, MEMBERS, n=n, seed=seed, row_values=values)


def test_qocs_takes_whole_clusters_by_score_and_truncates_the_last():
    sel = run("qocs", shed(5))
    # Cluster 1 and 3 tie at 0.5: the lower id goes first; then cluster 2, truncated to one member.
    assert [s.row_id for s in sel] == ["b1", "b2", "b3", "d1", "c1"]
    assert [s.draw_order for s in sel] == [0, 1, 2, 3, 4]
    assert "ranked 1/4" in sel[0].reason and "whole cluster" in sel[0].reason
    assert "first 1 of 2" in sel[-1].reason


def test_qocs_member_order_by_row_values_takes_the_best_members_first():
    sel = run("qocs", shed(5, values=VALUES), member_order="knn_shapley")
    assert [s.row_id for s in sel] == ["b2", "b3", "b1", "d1", "c2"]  # the truncated cluster keeps its best row
    assert sel[0].reason.endswith("member 1 by knn_shapley (knn_shapley 0.9)")
    assert "best 1 of 2 members by knn_shapley (target reached)" in sel[-1].reason and "knn_shapley 2" in sel[-1].reason
    every = run("qocs", shed(8, values=VALUES), member_order="knn_shapley")
    assert [s.row_id for s in every][-2:] == ["a1", "a2"]  # a row without a value comes last
    assert "no knn_shapley value" in every[-1].reason


def test_member_order_by_values_needs_them_and_names_them():
    for method in ("qocs", "qwcs", "coverage"):
        with pytest.raises(ValueError, match="per-row values 'ifd' were not computed \\(computed: knn_shapley\\)"):
            run(method, shed(3, values=VALUES), member_order="ifd")


def test_ifd_member_order_follows_the_superfiltering_rule():
    values = {"ifd": {"b1": 1.4, "b2": 0.7, "b3": 0.95}}
    sel = run("qocs", shed(3, values=values), member_order="ifd")
    assert [s.row_id for s in sel] == ["b3", "b2", "b1"]  # below 1, highest first; then 1.4


def test_qwcs_weights_are_a_softmax_with_temperature():
    w = qwcs_weights([0.0, 1.0], temperature=0.5)
    assert w[1] / w[0] == pytest.approx(np.exp(2.0))
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        qwcs_weights([1.0], 0.0)


def test_qwcs_draws_without_replacement_deterministically():
    a = run("qwcs", shed(8, seed=3), temperature=0.1)
    b = run("qwcs", shed(8, seed=3), temperature=0.1)
    assert [s.row_id for s in a] == [s.row_id for s in b]
    assert sorted(s.row_id for s in a) == sorted(r for m in MEMBERS for r in m)  # all 8, each once
    assert run("qwcs", shed(8, seed=4), temperature=0.1) != a
    assert len(run("qwcs", shed(3))) == 3
    with pytest.raises(ValueError, match="cannot draw 9 rows from 8"):
        run("qwcs", shed(9))


def test_qwcs_prefers_high_scores_in_proportion_to_weights():
    members = [[f"x{i}" for i in range(10_000)], [f"y{i}" for i in range(10_000)]]
    sel = run("qwcs", make_inputs([0, 1], [0.0, np.log(3.0)], members, n=4000), temperature=1.0)
    share = Counter(s.cluster_id for s in sel)[1] / 4000
    assert share == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 64, 100])
def test_weight_tree_draws_where_the_cumulative_weights_say_and_never_a_removed_cluster(k):
    rng = np.random.default_rng(k)
    w = rng.random(k) ** 3
    tree = WeightTree(w)
    live = np.ones(k, dtype=bool)
    for _ in range(k):
        p = np.where(live, w, 0.0)
        assert tree.total == pytest.approx(p.sum(), rel=1e-12)
        cum = np.cumsum(p)
        for u in rng.random(50) * tree.total:  # the oracle: the first cluster whose cumulative weight exceeds u
            expected = int(np.searchsorted(cum, u, side="right"))
            got = tree.draw(float(u))
            assert live[got]
            if abs(cum[min(expected, k - 1)] - u) > 1e-9 and (expected == 0 or abs(cum[expected - 1] - u) > 1e-9):
                assert got == expected
        assert live[tree.draw(float(np.nextafter(tree.total, 0)))]  # the very top of the range
        gone = int(rng.choice(np.flatnonzero(live)))
        tree.remove(gone)
        live[gone] = False
    assert tree.total == 0.0


def test_qwcs_with_weights_that_underflow_draws_uniformly_over_the_clusters_left():
    members = [["a1"], ["b1", "b2", "b3"], ["c1", "c2"]]
    sel = run("qwcs", make_inputs([0, 1, 2], [1e6, 0.0, 0.0], members, n=6), temperature=1.0)
    assert sel[0].row_id == "a1" and sorted(s.row_id for s in sel) == sorted(r for m in members for r in m)


def test_qwcs_member_order_by_values_takes_the_best_unused_member_of_the_drawn_cluster():
    sel = run("qwcs", shed(8, seed=5, values=VALUES), member_order="knn_shapley")
    src = run("qwcs", shed(8, seed=5), member_order="source")
    assert [s.cluster_id for s in sel] == [s.cluster_id for s in src]  # a fixed member order uses no draws
    for c, members in zip(IDS, MEMBERS, strict=True):
        order = [s.row_id for s in sel if s.cluster_id == c]
        assert order == sorted(members, key=lambda r: -VALUES["knn_shapley"].get(r, -math.inf))
    assert "best unused member by knn_shapley" in sel[0].reason
    for c, members in zip(IDS, MEMBERS, strict=True):
        assert [s.row_id for s in src if s.cluster_id == c] == members


def test_cluster_methods_need_scores():
    unscored = make_inputs(IDS, [None] * 4, MEMBERS, n=3)
    for method in ("qocs", "qwcs", "coverage"):
        with pytest.raises(
            ValueError, match=f"method {method} ranks clusters by their proxy score, but 4 of 4 clusters have none"
        ):
            run(method, unscored)


def test_auto_temperature():
    assert auto_temperature([1.0, 1.0]) == 1.0 and auto_temperature([0.0, 2.0]) == pytest.approx(1.0)


def brute_caps_ok(sel, caps_by_cluster):
    counts = Counter(s.cluster_id for s in sel)
    return all(counts[c] <= cap for c, cap in caps_by_cluster.items())


@pytest.mark.parametrize("n", [1, 3, 4, 6, 7])
def test_coverage_round_robin_respects_the_caps_and_covers_min_n_k_clusters(n):
    sel = run("coverage", shed(n))
    cap = max(1, math.ceil(n / 4))
    counts = Counter(s.cluster_id for s in sel)
    assert len(sel) == n and len({s.row_id for s in sel}) == n
    assert len(counts) == min(n, 4)
    before_lift = Counter(s.cluster_id for s in sel if "caps lifted" not in s.reason)
    assert max(before_lift.values()) <= cap  # a cap binds until every cluster reached it
    # Round 1 walks the clusters by score (ties: lower id): 1, 3, 2, 0.
    assert [s.cluster_id for s in sel[:4]] == [1, 3, 2, 0][: min(n, 4)]


def test_coverage_on_many_clusters_takes_one_row_from_each_of_the_best_n():
    rng = np.random.default_rng(0)
    ids = list(range(50))
    scores = rng.normal(size=50).tolist()
    members = [[f"r{c}-{j}" for j in range(int(rng.integers(1, 9)))] for c in ids]
    sel = run("coverage", make_inputs(ids, scores, members, n=20))
    assert sorted(s.cluster_id for s in sel) == sorted(np.argsort(-np.asarray(scores), kind="stable")[:20].tolist())
    assert [s.row_id for s in sel] == [members[s.cluster_id][0] for s in sel]  # source order inside a cluster


def test_coverage_explicit_and_fractional_caps():
    members = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(4)], [f"c{i}" for i in range(2)]]
    inputs = make_inputs([0, 1, 2], [0.3, 0.2, 0.1], members, n=9)
    sel = run("coverage", inputs, cap=3)
    assert brute_caps_ok(sel[:8], {0: 3, 1: 3, 2: 3})  # 3 + 3 + 2 rows before the caps are reached
    assert "caps lifted" in sel[8].reason and sel[8].cluster_id == 0 and "caps lifted" not in sel[7].reason
    frac = run("coverage", make_inputs([0, 1, 2], [0.3, 0.2, 0.1], members, n=8), cap_fraction=0.5)
    assert Counter(s.cluster_id for s in frac) == {0: 5, 1: 2, 2: 1}
    with pytest.raises(ValueError, match="cap or cap_fraction, not both"):
        run("coverage", inputs, cap=2, cap_fraction=0.5)
    with pytest.raises(ValueError, match="cap must be at least 1"):
        run("coverage", inputs, cap=0)


def test_coverage_member_order_by_values():
    sel = run("coverage", shed(4, values=VALUES), member_order="knn_shapley")
    assert [s.row_id for s in sel] == ["b2", "d1", "c2", "a1"]
    assert "best first by knn_shapley (knn_shapley 0.9)" in sel[0].reason


def test_random_member_order_is_a_seeded_shuffle_of_each_cluster():
    members = [list("abcdefg"), ["h", "i"]]
    for method in ("qocs", "coverage"):
        a = [
            s.row_id for s in run(method, make_inputs([0, 1], [0.2, 0.1], members, n=9, seed=3), member_order="random")
        ]
        assert a == [
            s.row_id for s in run(method, make_inputs([0, 1], [0.2, 0.1], members, n=9, seed=3), member_order="random")
        ]
        assert sorted(a) == list("abcdefghi") and [r for r in a if r in "abcdefg"] != list("abcdefg")
