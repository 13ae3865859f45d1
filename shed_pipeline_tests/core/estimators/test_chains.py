"""TS-DShapley's subset chains, against exact answers on additive games."""

import numpy as np
import pytest

from shed_pipeline.core.estimators import estimate, subset_chains
from shed_pipeline.core.estimators.chains import chain_assignment, default_chain_size


class Additive:
    """U(S) = sum of the members' weights: every player's Shapley value in any sub-game is its weight."""

    def __init__(self, w):
        self.w = np.asarray(w, dtype=np.float64)
        self.n_players = len(self.w)
        self.calls = 0

    def value(self, mask):
        self.calls += 1
        return float(self.w[np.asarray(mask, dtype=bool)].sum())


def test_chains_recover_additive_values_exactly():
    w = np.random.default_rng(0).normal(size=37)
    res = subset_chains(Additive(w), chain_size=6, rounds=3, permutations=2, seed=5)
    np.testing.assert_allclose(res.values, w, atol=1e-12)
    np.testing.assert_allclose(res.stderr, 0, atol=1e-12)
    assert res.info["rounds"] == 3 and res.info["chains"] >= 3 * 5


def test_chain_cost_is_rounds_times_permutations_times_players():
    u = Additive(np.ones(40))
    subset_chains(u, chain_size=8, rounds=4, permutations=3, seed=0)
    assert u.calls == 4 * 3 * 40 + 1  # + U(empty)


def test_chains_value_each_player_in_small_coalitions_only():
    seen = []

    class Spy(Additive):
        def value(self, mask):
            seen.append(int(np.sum(mask)))
            return super().value(mask)

    subset_chains(Spy(np.ones(100)), chain_size=10, rounds=2, permutations=1, seed=0)
    assert max(seen) <= 25  # chains are hash buckets of ~10 players, never the whole set


def test_chain_assignment_is_stable_when_players_join():
    keys = np.arange(50) * 7 + 3
    before = chain_assignment(50, 5, seed=1, round_=0, keys=keys)
    after = chain_assignment(51, 5, seed=1, round_=0, keys=np.append(keys, 999))
    np.testing.assert_array_equal(after[:50], before)
    assert not np.array_equal(before, chain_assignment(50, 5, seed=1, round_=1, keys=keys))


def test_estimate_dispatches_ts_chains_and_default_size():
    w = np.arange(20.0)
    res = estimate("ts_chains", Additive(w), permutations=1, seed=0, chain_rounds=2)
    np.testing.assert_allclose(res.values, w)
    assert default_chain_size(20) == 8 and default_chain_size(1000) == 50
    with pytest.raises(ValueError):
        subset_chains(Additive(w), rounds=0)
