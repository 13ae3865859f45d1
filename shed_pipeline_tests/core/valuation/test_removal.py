"""core/valuation/removal.py: TS-DShapley's removal-index rule, against exact answers on additive
games."""

import numpy as np
import pytest

from shed_pipeline.core.valuation import removal_curve, removal_order


class Additive:
    """U(S) = sum of the members' weights: every player's Shapley value in any sub-game is its weight."""

    def __init__(self, w):
        self.w = np.asarray(w, dtype=np.float64)
        self.n_players = len(self.w)
        self.calls = 0

    def value(self, mask):
        self.calls += 1
        return float(self.w[np.asarray(mask, dtype=bool)].sum())


def test_removal_rule_drops_exactly_the_harmful_players():
    w = np.array([0.5, -0.2, 0.1, -0.4, 0.3, -0.1, 0.2, 0.05, 0.6, 0.4])
    curve = removal_curve(Additive(w), w, max_fraction=0.5, points=6)
    assert curve.removed == [0, 1, 2, 3, 4, 5]
    assert curve.best == 3  # the three negative players
    assert sorted(np.flatnonzero(curve.dropped)) == [1, 3, 5]
    np.testing.assert_allclose(curve.utility[3], w[w > 0].sum())


def test_removal_rule_ties_keep_more_players_and_inputs_are_checked():
    w = np.array([1.0, 0.0, 0.0, 2.0])
    assert removal_curve(Additive(w), w, max_fraction=0.75, points=4).best == 0
    np.testing.assert_array_equal(removal_order([3.0, 1.0, 1.0], keys=[0, 9, 2]), [2, 1, 0])
    with pytest.raises(ValueError, match="values for"):
        removal_curve(Additive(w), w[:2])
    with pytest.raises(ValueError, match="max_fraction"):
        removal_curve(Additive(w), w, max_fraction=1.0)


def test_removal_rule_with_one_player_removes_nothing():
    curve = removal_curve(Additive([-1.0]), [-1.0])
    assert curve.removed == [0] and curve.best == 0 and not curve.dropped.any()
