from collections import Counter

import numpy as np
import pytest

from shed_pipeline.core.sampling import auto_temperature, qocs, qwcs, qwcs_weights, random_subset, select, target_size

IDS = [0, 1, 2, 3]
SCORES = [0.1, 0.5, 0.3, 0.5]
MEMBERS = [["a1", "a2"], ["b1", "b2", "b3"], ["c1", "c2"], ["d1"]]


def test_qocs_takes_whole_clusters_by_score_and_truncates_the_last():
    sel = qocs(IDS, SCORES, MEMBERS, 5)
    # Cluster 1 and 3 tie at 0.5: the lower id goes first; then cluster 2, truncated to one member.
    assert [s.row_id for s in sel] == ["b1", "b2", "b3", "d1", "c1"]
    assert [s.draw_order for s in sel] == [0, 1, 2, 3, 4]
    assert "ranked 1/4" in sel[0].reason and "whole cluster" in sel[0].reason
    assert "first 1 of 2" in sel[-1].reason


def test_qwcs_weights_are_a_softmax_with_temperature():
    w = qwcs_weights([0.0, 1.0], temperature=0.5)
    assert w[1] / w[0] == pytest.approx(np.exp(2.0))
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        qwcs_weights([1.0], 0.0)


def test_qwcs_draws_without_replacement_deterministically():
    a = qwcs(IDS, SCORES, MEMBERS, 8, temperature=0.1, seed=3)
    b = qwcs(IDS, SCORES, MEMBERS, 8, temperature=0.1, seed=3)
    assert [s.row_id for s in a] == [s.row_id for s in b]
    assert sorted(s.row_id for s in a) == sorted(r for m in MEMBERS for r in m)  # all 8, each once
    assert qwcs(IDS, SCORES, MEMBERS, 8, temperature=0.1, seed=4) != a


def test_qwcs_prefers_high_scores_in_proportion_to_weights():
    ids = [0, 1]
    members = [[f"x{i}" for i in range(10_000)], [f"y{i}" for i in range(10_000)]]
    sel = qwcs(ids, [0.0, np.log(3.0)], members, 4000, temperature=1.0, seed=0)
    share = Counter(s.cluster_id for s in sel)[1] / 4000
    assert share == pytest.approx(0.75, abs=0.02)


def test_random_and_dispatch():
    sel = select("random", IDS, SCORES, MEMBERS, 4, seed=0)
    assert len({s.row_id for s in sel}) == 4
    assert all(s.row_id[0] == "abcd"[s.cluster_id] for s in sel)
    assert select("qocs", IDS, SCORES, MEMBERS, 2, seed=0)[0].row_id == "b1"
    assert len(select("qwcs", IDS, SCORES, MEMBERS, 3, seed=0)) == 3
    with pytest.raises(ValueError, match="unknown method"):
        select("best", IDS, SCORES, MEMBERS, 2, seed=0)
    assert random_subset(["a", "b", "c"], {}, 3, 1)[0].cluster_id == -1


def test_target_size_and_auto_temperature():
    assert target_size(8000, 0.1, None) == 800
    assert target_size(8000, 0.1, 50) == 50
    assert target_size(5, 0.01, None) == 1
    for bad in [(100, 0.0, None), (100, 1.5, None), (100, None, 0), (100, None, 101)]:
        with pytest.raises(ValueError):
            target_size(*bad)
    assert auto_temperature([1.0, 1.0]) == 1.0 and auto_temperature([0.0, 2.0]) == pytest.approx(1.0)
