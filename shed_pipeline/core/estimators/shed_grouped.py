"""SHED's grouped removal-permutation estimator, with the official code's defects fixed.

Each permutation t cuts a random order of the K players into B = ceil(K / n) groups G_1..G_B.
S_0 = all players, S_j = S_{j-1} minus G_j, so S_B is empty; every i in G_j gets
m_t(i) = U(S_{j-1}) - U(S_j). The estimate is the mean over all T permutations (SHED sums, which
only rescales; it also aggregated 19 of 20 iterations and used U(empty) = 0, both fixed here:
U(empty) is the utility's real value). With n = 1 this is plain permutation sampling and converges
to the Shapley value; with n > 1 members of a group share one marginal.
Cost: T * B evaluations plus U(all) and U(empty) (reused across permutations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult, MarginalStats, permutation
from shed_pipeline.core.strategies import Strategy


def default_group_size(n_players: int, n_groups: int = 50) -> int:
    """SHED's shape: about 50 groups per permutation (n = 60 for K = 3000)."""
    return max(1, math.ceil(n_players / n_groups))


def shed_grouped(
    utility, permutations: int, seed: int, group_size: int | None = None, player_keys=None
) -> EstimatorResult:
    k = utility.n_players
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    n = group_size or default_group_size(k)
    if n < 1:
        raise ValueError("group_size must be at least 1")
    stats = MarginalStats(k)
    for t in range(permutations):
        perm = permutation(k, seed, t, player_keys)
        mask = np.ones(k, dtype=bool)
        prev = utility.value(mask)
        marg = np.zeros(k)
        for start in range(0, k, n):
            group = perm[start : start + n]
            mask[group] = False
            cur = utility.value(mask)
            marg[group] = prev - cur
            prev = cur
        stats.add(marg)
    return stats.result({"permutations": permutations, "group_size": n, "groups": math.ceil(k / n)})


@dataclass(frozen=True)
class ShedGroupedSettings:
    permutations: int = field(default=20, metadata={"help": "removal permutations (SHED's run.sh uses 20)"})
    group_size: Optional[int] = field(
        default=None, metadata={"help": "players removed together; default ceil(K / 50) (SHED: 60 for K = 3000)"}
    )


STRATEGY = Strategy(
    name="shed_grouped",
    summary=(
        "SHED's estimator: permutations cut into groups removed one at a time, each member sharing the group's marginal"
    ),
    settings=ShedGroupedSettings,
    run=lambda utility, settings, seed, player_keys=None: shed_grouped(
        utility, permutations=settings.permutations, seed=seed, group_size=settings.group_size, player_keys=player_keys
    ),
    calls=lambda k, settings: (
        settings.permutations * (math.ceil(k / (settings.group_size or default_group_size(k))) + 1)
    ),
    fixed_coalitions=lambda settings: True,
)
