import itertools
import math

import numpy as np
import pytest

from shed_pipeline.core.estimators import (
    banzhaf_msr,
    estimate,
    exact_banzhaf,
    exact_shapley,
    knn_shapley,
    shed_grouped,
    tmc_shapley,
)
from shed_pipeline.core.estimators.base import permutation
from shed_pipeline.core.utilities import CachedUtility, KNNUtility


class TableGame:
    """A game given by an arbitrary value for every coalition (bitmask-indexed)."""

    def __init__(self, values: np.ndarray):
        self.vals = values
        self.n_players = int(math.log2(len(values)))

    def value(self, members):
        return float(self.vals[int(sum(1 << i for i, m in enumerate(members) if m))])


def random_knn_game(rng, v, n, k):
    order = np.argsort(rng.random((v, n)), axis=1)
    return KNNUtility.from_matrices(order, rng.random((v, n)), k)


@pytest.mark.parametrize("n,k", [(1, 1), (5, 1), (6, 3), (8, 2), (9, 5), (5, 5), (4, 7), (10, 4)])
def test_knn_closed_form_equals_enumeration(n, k):
    rng = np.random.default_rng(n * 31 + k)
    u = random_knn_game(rng, v=6, n=n, k=k)
    np.testing.assert_allclose(knn_shapley(u).values, exact_shapley(u).values, atol=1e-12)


def test_knn_closed_form_with_ties_in_match_and_binary_labels():
    rng = np.random.default_rng(0)
    order = np.argsort(rng.random((5, 8)), axis=1)
    match = (rng.random((5, 8)) > 0.5).astype(float)  # labelled case of Jia et al.
    u = KNNUtility.from_matrices(order, match, 3)
    np.testing.assert_allclose(knn_shapley(u).values, exact_shapley(u).values, atol=1e-12)


def test_exact_shapley_on_known_games():
    # Additive game: each player's value is its own weight.
    w = np.array([0.5, -1.0, 2.0, 0.0])
    vals = np.array([sum(w[i] for i in range(4) if m >> i & 1) for m in range(16)])
    np.testing.assert_allclose(exact_shapley(TableGame(vals)).values, w)
    # Glove game: players 0 and 1 hold left gloves, 2 a right glove; a pair is worth 1.
    vals = np.array([min(((m >> 0) & 1) + ((m >> 1) & 1), (m >> 2) & 1) for m in range(8)], dtype=float)
    np.testing.assert_allclose(exact_shapley(TableGame(vals)).values, [1 / 6, 1 / 6, 2 / 3])


def test_efficiency_of_exact_values():
    rng = np.random.default_rng(5)
    game = TableGame(np.concatenate([[0.3], rng.random(2**6 - 1)]))
    phi = exact_shapley(game).values
    assert phi.sum() == pytest.approx(game.vals[-1] - game.vals[0])


@pytest.mark.parametrize("n", [4, 7, 10])
def test_sampling_estimators_converge_to_exact_values(n):
    rng = np.random.default_rng(n)
    game = TableGame(np.concatenate([[0.1], rng.random(2**n - 1)]))
    exact = exact_shapley(game).values
    for est in (
        lambda T: tmc_shapley(CachedUtility(game), T, seed=1),
        lambda T: shed_grouped(CachedUtility(game), T, seed=1, group_size=1),
    ):
        small, large = est(50), est(3000)
        err_small, err_large = np.abs(small.values - exact).max(), np.abs(large.values - exact).max()
        # Error shrinks like 1/sqrt(T) (sqrt(60) ~ 7.7x here), and every player is within 5 standard errors.
        assert err_large < err_small / 3
        assert np.all(np.abs(large.values - exact) <= 5 * large.stderr)


def test_sampling_estimators_on_knn_game_match_closed_form():
    u = random_knn_game(np.random.default_rng(2), v=10, n=9, k=3)
    exact = knn_shapley(u).values
    np.testing.assert_allclose(tmc_shapley(CachedUtility(u), 4000, seed=0).values, exact, atol=0.02)


def expected_grouped_marginals(game, n_group: int) -> np.ndarray:
    """E over all orders of SHED's grouped removal marginal, by enumerating every permutation."""
    k = game.n_players
    acc = np.zeros(k)
    count = 0
    for perm in itertools.permutations(range(k)):
        mask = np.ones(k, bool)
        prev = game.value(mask)
        for s in range(0, k, n_group):
            g = list(perm[s : s + n_group])
            mask[g] = False
            cur = game.value(mask)
            acc[g] += prev - cur
            prev = cur
        count += 1
    return acc / count


def test_shed_grouped_with_groups_converges_to_its_exact_expectation():
    rng = np.random.default_rng(9)
    game = TableGame(np.concatenate([[0.2], rng.random(2**6 - 1)]))
    target = expected_grouped_marginals(game, 2)
    est = shed_grouped(CachedUtility(game), 6000, seed=3, group_size=2)
    np.testing.assert_allclose(est.values, target, atol=0.03)
    assert est.info == {"permutations": 6000, "group_size": 2, "groups": 3}


def test_shed_grouped_uses_the_real_empty_value_and_every_iteration():
    # A game with U(empty) = 0.5: the last-removed group must see U(S) - 0.5, not U(S) - 0.
    vals = np.full(8, 1.0)
    vals[0] = 0.5
    game = TableGame(vals)
    est = shed_grouped(CachedUtility(game), 3, seed=0, group_size=1)
    # Only the last player removed gets a marginal (1 - 0.5); over 3 permutations the mean is per player.
    lasts = [permutation(3, 0, t)[-1] for t in range(3)]
    expected = np.zeros(3)
    for p in lasts:
        expected[p] += 0.5 / 3
    np.testing.assert_allclose(est.values, expected)


def test_estimators_are_deterministic_and_count_evaluations():
    game = TableGame(np.random.default_rng(4).random(2**8))
    a, b = CachedUtility(game), CachedUtility(game)
    np.testing.assert_array_equal(tmc_shapley(a, 30, seed=7).values, tmc_shapley(b, 30, seed=7).values)
    # 30 permutations x 8 players + U(all), U(empty); repeated coalitions are served from memory.
    assert a.evaluations + a.cache_hits == 30 * 8 + 2
    c = CachedUtility(game)
    shed_grouped(c, 10, seed=0, group_size=3)
    assert c.evaluations + c.cache_hits == 10 * (1 + math.ceil(8 / 3))


def test_tmc_truncation_saves_evaluations():
    game = TableGame(np.array([0.0] + [1.0] * 255))  # saturates once anyone joins
    u = CachedUtility(game)
    res = tmc_shapley(u, 20, seed=0, tolerance=0.01)
    np.testing.assert_allclose(res.values.sum(), 1.0)
    assert res.info["truncated_steps"] == 20 * 7


def test_dispatch_rejects_unknown_estimator_and_non_knn_closed_form():
    game = TableGame(np.zeros(4))
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate("banzhaf?", game, seed=0, permutations=1)
    with pytest.raises(TypeError, match="knn"):
        estimate("knn_exact", game)


def test_permutations_keep_the_relative_order_of_players_when_others_join_or_leave():
    keys = np.array([3, 8, 11, 20, 21, 40, 41])
    for t in range(5):
        full = keys[permutation(len(keys), seed=7, t=t, keys=keys)]
        fewer = keys[[0, 1, 3, 5, 6]]
        part = fewer[permutation(len(fewer), seed=7, t=t, keys=fewer)]
        assert [k for k in full if k in set(fewer)] == list(part)
        np.testing.assert_array_equal(
            permutation(len(keys), seed=7, t=t, keys=keys), permutation(len(keys), seed=7, t=t, keys=keys)
        )
    assert not np.array_equal(permutation(7, 7, 0, keys), permutation(7, 8, 0, keys))
    with pytest.raises(ValueError, match="2 player keys for 7 players"):
        permutation(7, 0, 0, keys[:2])


def test_exact_banzhaf_on_known_games():
    w = np.array([0.5, -1.0, 2.0, 0.0])
    vals = np.array([sum(w[i] for i in range(4) if m >> i & 1) for m in range(16)])
    np.testing.assert_allclose(exact_banzhaf(TableGame(vals)).values, w)
    glove = np.array([min(((m >> 0) & 1) + ((m >> 1) & 1), (m >> 2) & 1) for m in range(8)], dtype=float)
    np.testing.assert_allclose(exact_banzhaf(TableGame(glove)).values, [0.25, 0.25, 0.75])


def test_banzhaf_msr_is_its_formula_on_its_samples_and_converges_to_the_exact_values():
    from shed_pipeline.core.estimators.banzhaf import sample_masks

    rng = np.random.default_rng(8)
    game = TableGame(np.concatenate([[0.0], rng.random(2**6 - 1)]))
    res = banzhaf_msr(game, samples=400, seed=5)
    masks = sample_masks(6, 400, 5)
    for i in range(6):  # brute force, one player at a time
        inside = [game.value(m) for m in masks if m[i]]
        outside = [game.value(m) for m in masks if not m[i]]
        assert res.values[i] == pytest.approx(np.mean(inside) - np.mean(outside), abs=1e-12)
    big = banzhaf_msr(game, samples=40_000, seed=5)
    exact = exact_banzhaf(game).values
    assert np.abs(big.values - exact).max() < 0.02 and np.all(np.abs(big.values - exact) < 4 * big.stderr)


def test_banzhaf_samples_keep_memberships_when_players_leave():
    from shed_pipeline.core.estimators.banzhaf import sample_masks

    keys = np.array([4, 9, 17, 30, 31])
    full = sample_masks(5, 64, 2, keys)
    fewer = sample_masks(3, 64, 2, keys[[0, 2, 4]])
    np.testing.assert_array_equal(full[:, [0, 2, 4]], fewer)
    assert 0.3 < full.mean() < 0.7
    with pytest.raises(ValueError, match="samples must be at least 2"):
        banzhaf_msr(TableGame(np.zeros(4)), samples=1, seed=0)


def test_banzhaf_through_estimate_reuses_every_coalition_on_a_second_pass():
    u = CachedUtility(random_knn_game(np.random.default_rng(3), v=5, n=20, k=3))
    a = estimate("banzhaf_msr", u, samples=300, seed=1)
    first = u.evaluations
    b = estimate("banzhaf_msr", u, samples=300, seed=1)
    assert u.evaluations == first and first <= 300
    np.testing.assert_array_equal(a.values, b.values)


def test_knn_exact_from_the_inputs_equals_the_dense_closed_form_bit_for_bit(monkeypatch):
    """knn_exact values the game from its inputs a block of validation rows at a time (bounded
    memory at 50,000 proxies) and never builds the utility's dense matrices; the values are the
    dense closed form's exactly, duplicate vectors (ties) and blocks of one row included."""
    import shed_pipeline.core.row_values.knn_shapley as blocked
    from shed_pipeline.core.estimators import ESTIMATORS

    rng = np.random.default_rng(11)
    words = ["a", "b", "c", "d", "e"]
    players = rng.normal(size=(40, 8)).astype(np.float32)
    players[5] = players[3]  # exact ties in similarity
    players[17] = players[3]
    outputs = [" ".join(rng.choice(words, size=rng.integers(0, 4))) for _ in range(40)]
    queries = rng.normal(size=(9, 8)).astype(np.float32)
    refs = [" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(9)]
    spec = ESTIMATORS["knn_exact"]
    for k in (1, 3, 50):
        dense = knn_shapley(KNNUtility(players, outputs, queries, refs, k=k)).values
        for block_elements in (1, 80, blocked.BLOCK_ELEMENTS):
            monkeypatch.setattr(blocked, "BLOCK_ELEMENTS", block_elements)
            utility = KNNUtility(players, outputs, queries, refs, k=k)
            res = spec.run(CachedUtility(utility), spec.settings(), 0, None)
            np.testing.assert_array_equal(res.values, dense)
            assert not utility.dense_built  # the dense matrices were never built
