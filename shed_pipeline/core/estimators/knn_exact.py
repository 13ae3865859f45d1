"""Exact Shapley values of the kNN utility in closed form (Jia et al., VLDB 2019), O(V * K log K).

Per validation row, with players sorted nearest first (alpha_1 .. alpha_N):
    s(alpha_N) = m(alpha_N) / N
    s(alpha_i) = s(alpha_{i+1}) + (m(alpha_i) - m(alpha_{i+1})) / k * min(k, i) / i
and the value is the mean over validation rows. The recursion holds for N >= k; for N < k every
player is always among the neighbours, the game is additive, and s = m / k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult
from shed_pipeline.core.row_values.knn_shapley import knn_shapley_values, sorted_shapley
from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.utilities.base import CachedUtility


def knn_shapley(utility) -> EstimatorResult:
    if not hasattr(utility, "match_sorted"):
        raise TypeError("knn_exact needs the knn utility (its closed form holds for that game only)")
    m = utility.match_sorted  # (V, N) match values, nearest first
    order = utility.order
    v, n = m.shape
    s_sorted = sorted_shapley(m, utility.k)
    phi = np.zeros((v, n))
    np.put_along_axis(phi, order, s_sorted, axis=1)
    return EstimatorResult(values=phi.mean(0), info={"validation_rows": v})


@dataclass(frozen=True)
class KNNExactSettings:
    pass


def run(utility, settings: KNNExactSettings, seed: int, player_keys=None) -> EstimatorResult:
    # The closed form reads the knn utility's neighbour order and matches, not its values: it goes
    # past the counting, caching wrapper (no coalition is evaluated).
    while isinstance(utility, CachedUtility):
        utility = utility.inner
    if getattr(utility, "inputs", None) is not None:
        # From the game's inputs, a block of validation rows at a time: the same values (same
        # order, matches and sums) in bounded memory, e.g. 50,000 proxies x 1,000 validation rows.
        player_vectors, player_outputs, query_vectors, query_references = utility.inputs
        values = knn_shapley_values(player_vectors, player_outputs, query_vectors, query_references, k=utility.k)
        return EstimatorResult(values=values, info={"validation_rows": len(query_references)})
    return knn_shapley(utility)


STRATEGY = Strategy(
    name="knn_exact",
    summary="the closed form of the knn utility: its exact Shapley values in O(V K log K), Jia et al. 2019",
    settings=KNNExactSettings,
    run=run,
    requires={"utility": ("knn",)},
)
