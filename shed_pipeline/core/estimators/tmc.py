"""Truncated Monte Carlo Shapley (Ghorbani & Zou, 2019).

For each seeded permutation, players join one by one and each gets its marginal contribution.
Once U(S) is within `tolerance * |U(all)|` of U(all), the rest of the permutation is truncated
(marginals 0), which saves evaluations when late joiners matter little. tolerance = 0 never
truncates and converges to the exact Shapley value.
"""

from __future__ import annotations

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult, permutation


def tmc_shapley(utility, permutations: int, seed: int, tolerance: float = 0.0) -> EstimatorResult:
    k = utility.n_players
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    full = utility.value(np.ones(k, dtype=bool))
    empty = utility.value(np.zeros(k, dtype=bool))
    total = np.zeros(k)
    total_sq = np.zeros(k)
    truncated = 0
    for t in range(permutations):
        perm = permutation(k, seed, t)
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
        total += marg
        total_sq += marg**2
    mean = total / permutations
    var = np.maximum(total_sq / permutations - mean**2, 0.0)
    stderr = np.sqrt(var / permutations) if permutations > 1 else None
    return EstimatorResult(values=mean, stderr=stderr, info={"permutations": permutations, "truncated_steps": truncated})
