"""The baselines against brute-force or hand-computed expectations: random, stratified, longest,
ifd (Superfiltering's rule) and greedy k-center."""

import itertools
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from shed_pipeline.core.selection.kcenter import greedy_k_center
from shed_pipeline.core.selection.stratified import quotas
from shed_pipeline_tests.core.selection.inputs import make_inputs, run, unit_vectors

IDS = [0, 1, 2, 3]
MEMBERS = [["a1", "a2"], ["b1", "b2", "b3"], ["c1", "c2"], ["d1"]]


def test_random_is_a_seeded_uniform_sample_of_distinct_pool_rows():
    sel = run("random", make_inputs(IDS, [None] * 4, MEMBERS, n=4))
    assert len({s.row_id for s in sel}) == 4
    assert all(s.row_id[0] == "abcd"[s.cluster_id] for s in sel)
    assert sel == run("random", make_inputs(IDS, [None] * 4, MEMBERS, n=4))
    assert sel != run("random", make_inputs(IDS, [None] * 4, MEMBERS, n=4, seed=1))
    assert sel[0].reason == "random: uniform draw 1 of 4 (seed 0)"


def largest_remainder_ok(sizes, n, counts):
    """Independent check: counts are the floors of n * s / N plus one for the clusters with the largest
    fractional parts (any of equal ones)."""
    exact = [Fraction(n * s, sum(sizes)) for s in sizes]
    extra = [c - int(e) for c, e in zip(counts, exact, strict=True)]
    if sum(counts) != n or any(x not in (0, 1) for x in extra):
        return False
    got = [e - int(e) for e, x in zip(exact, extra, strict=True) if x]
    missed = [e - int(e) for e, x in zip(exact, extra, strict=True) if not x]
    return not got or not missed or min(got) >= max(missed)


@pytest.mark.parametrize("seed", range(5))
def test_stratified_counts_are_the_largest_remainder_quotas(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 30, 12)]
    members = [[f"c{c}-{j}" for j in range(s)] for c, s in enumerate(sizes)]
    n = int(rng.integers(1, sum(sizes)))
    sel = run("stratified", make_inputs(list(range(12)), [None] * 12, members, n=n, seed=seed))
    counts = Counter(s.cluster_id for s in sel)
    assert largest_remainder_ok(sizes, n, [counts[c] for c in range(12)])
    assert len({s.row_id for s in sel}) == n and all(s.row_id.startswith(f"c{s.cluster_id}-") for s in sel)


def test_stratified_hand_example():
    # 7, 2, 1 rows; 4 to take: 2.8, 0.8, 0.4 -> floors 2, 0, 0; the two rows left go to the .8s.
    assert quotas([7, 2, 1], 4, np.random.default_rng(0)) == [3, 1, 0]
    members = [[f"a{i}" for i in range(7)], ["b0", "b1"], ["c0"]]
    sel = run("stratified", make_inputs([0, 1, 2], [None] * 3, members, n=4))
    assert Counter(s.cluster_id for s in sel) == {0: 3, 1: 1}
    assert "cluster 0 (7 of 10 pool rows) gets 3 of 4 rows (2.8 by share" in sel[0].reason


def test_longest_picks_exactly_the_k_longest_by_characters_ties_by_row_id():
    rng = np.random.default_rng(1)
    members = [[f"r{c}{j}" for j in range(6)] for c in range(5)]
    lengths = rng.integers(0, 8, 30)
    outputs = ["é" * int(k) for k in lengths]  # 2 bytes each, 1 character
    for k in (1, 5, 13, 30):
        sel = run("longest", make_inputs(range(5), [None] * 5, members, n=k, outputs=outputs))
        ids = [r for m in members for r in m]
        brute = sorted(range(30), key=lambda i: (-lengths[i], ids[i]))[:k]
        assert [s.row_id for s in sel] == [ids[i] for i in brute]
        chosen = {s.row_id for s in sel}
        assert min(lengths[i] for i in range(30) if ids[i] in chosen) >= max(
            [lengths[i] for i in range(30) if ids[i] not in chosen] or [0]
        )
    assert sel[0].reason == f"longest: response of {lengths.max()} characters, rank 1 of 30 by length"
    loose = run("longest", make_inputs([0], [None], [["a"]], n=1, outputs=["x", "longer"], extra_rows=["z"]))
    assert loose[0].row_id == "z" and loose[0].cluster_id == -1  # a row in no cluster


IFD = {"r1": 0.5, "r2": 0.9, "r3": 1.2, "r4": 0.99, "r5": float("nan"), "r6": 1.05}


def test_ifd_keeps_the_highest_ifd_below_one_then_says_how_it_filled_up():
    inputs = lambda n: make_inputs([0], [None], [list(IFD) + ["r7"]], n=n, row_values={"ifd": IFD})  # noqa: E731
    assert [s.row_id for s in run("ifd", inputs(3))] == ["r4", "r2", "r1"]
    sel = run("ifd", inputs(7))
    assert [s.row_id for s in sel] == [
        "r4",
        "r2",
        "r1",
        "r6",
        "r3",
        "r5",
        "r7",
    ]  # then >= 1 lowest first, then no value
    assert sel[0].reason == "ifd: IFD 0.99 < 1, rank 1 of the 3 rows below 1 (Superfiltering: highest IFD below 1)"
    assert sel[3].reason == "ifd: only 3 rows have IFD < 1 for a target of 7; filled with IFD 1.05 >= 1, lowest first"
    assert "without an IFD value" in sel[5].reason and "without an IFD value" in sel[6].reason


def distance_matrix(x):
    x = x.astype(np.float64)
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))


@pytest.mark.parametrize("seed", range(4))
def test_kcenter_radius_equals_brute_force_and_is_within_twice_the_optimum(seed):
    x = unit_vectors(10, 3, seed)
    d = distance_matrix(x)
    for k in (1, 2, 3, 4):
        res = greedy_k_center(x, k, seed)
        assert len(set(res.indices)) == k
        assert res.radius == pytest.approx(d[:, res.indices].min(axis=1).max(), abs=1e-6)
        optimum = min(d[:, list(c)].min(axis=1).max() for c in itertools.combinations(range(10), k))
        assert res.radius <= 2 * optimum + 1e-6
        for j in range(1, k):  # each pick is the farthest row from the earlier centres
            assert res.pick_distances[j] == pytest.approx(d[:, res.indices[:j]].min(axis=1).max(), abs=1e-6)
    assert greedy_k_center(x, 4, seed, chunk_rows=3).indices == greedy_k_center(x, 4, seed).indices


def test_kcenter_method_reasons_and_duplicates():
    x = np.repeat(unit_vectors(3, 4, 0), 2, axis=0)  # every row twice
    members = [["a", "b", "c", "d", "e", "f"]]
    sel = run("kcenter", make_inputs([0], [None], members, n=5, vectors=x, seed=2))
    assert len({s.row_id for s in sel}) == 5  # distinct rows even when the farthest rows are at distance 0
    assert sel[0].reason == "kcenter: first centre, a random row (seed 2)"
    assert sel[1].reason.startswith("kcenter: centre 2 of 5, the row farthest from the earlier centres (distance ")
    assert sel[4].reason.endswith("(distance 0 to the nearest)")  # a copy of an earlier centre
