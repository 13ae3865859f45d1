"""Truncated Monte Carlo Shapley (Ghorbani & Zou, 2019).

For each seeded permutation, players join one by one and each gets its marginal contribution.
Once U(S) is within `tolerance * |U(all)|` of U(all), the rest of the permutation is truncated
(marginals 0), which saves evaluations when late joiners matter little. tolerance = 0 never
truncates and converges to the exact Shapley value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult, MarginalStats, permutation
from shed_pipeline.core.strategies import Strategy


def tmc_shapley(utility, permutations: int, seed: int, tolerance: float = 0.0, player_keys=None) -> EstimatorResult:
    k = utility.n_players
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    full = utility.value(np.ones(k, dtype=bool))
    empty = utility.value(np.zeros(k, dtype=bool))
    stats = MarginalStats(k)
    truncated = 0
    for t in range(permutations):
        perm = permutation(k, seed, t, player_keys)
        mask = np.zeros(k, dtype=bool)
        prev = empty
        marg = np.zeros(k)
        for j, p in enumerate(perm):
            if tolerance > 0 and abs(full - prev) <= tolerance * abs(full):
                truncated += k - j
                break
            mask[p] = True
            cur = utility.value(mask)
            marg[p] = cur - prev
            prev = cur
        stats.add(marg)
    return stats.result({"permutations": permutations, "truncated_steps": truncated})


@dataclass(frozen=True)
class TMCSettings:
    permutations: int = field(default=20, metadata={"help": "Monte Carlo permutations"})
    truncation_tolerance: float = field(
        default=0.0, metadata={"help": "truncate a permutation once U is within this fraction of U(all); 0 = never"}
    )


STRATEGY = Strategy(
    name="tmc",
    summary="truncated Monte Carlo Shapley (Ghorbani & Zou 2019): players join one by one in seeded permutations",
    settings=TMCSettings,
    run=lambda utility, settings, seed, player_keys=None: tmc_shapley(
        utility,
        permutations=settings.permutations,
        seed=seed,
        tolerance=settings.truncation_tolerance,
        player_keys=player_keys,
    ),
    calls=lambda k, settings: settings.permutations * k + 2,
    fixed_coalitions=lambda settings: (
        settings.truncation_tolerance == 0
    ),  # where a permutation is cut depends on the values
)
