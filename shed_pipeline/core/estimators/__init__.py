"""Shapley value estimators over a `Utility` (players = cluster proxies), one strategy module each.

An estimator strategy's `run` is `run(utility, settings, seed, player_keys) -> EstimatorResult`
(player_keys: each player's stable key, its cluster id, so that seeded draws recur across runs).
Adding an estimator = its module (declaring `STRATEGY`) + one line below.
"""

from shed_pipeline.core.estimators import banzhaf, chains, exact, knn_exact, tmc
from shed_pipeline.core.estimators import shed_grouped as shed_grouped_module
from shed_pipeline.core.estimators.banzhaf import banzhaf_msr
from shed_pipeline.core.estimators.base import EstimatorResult
from shed_pipeline.core.estimators.chains import subset_chains
from shed_pipeline.core.estimators.exact import exact_banzhaf, exact_shapley
from shed_pipeline.core.estimators.knn_exact import knn_shapley
from shed_pipeline.core.estimators.shed_grouped import shed_grouped  # the function (as before), not the module
from shed_pipeline.core.estimators.tmc import tmc_shapley
from shed_pipeline.core.strategies import Registry

ESTIMATORS = Registry(
    "estimator",
    [knn_exact.STRATEGY, shed_grouped_module.STRATEGY, tmc.STRATEGY, banzhaf.STRATEGY, chains.STRATEGY, exact.STRATEGY],
)


def estimate(name: str, utility, seed: int = 0, player_keys=None, **settings) -> EstimatorResult:
    """The named estimator's values of `utility`, with `settings` (the rest take their defaults)."""
    strategy, configured = ESTIMATORS.configure(name, settings)
    return strategy.run(utility, configured, seed, player_keys)


__all__ = [
    "ESTIMATORS",
    "EstimatorResult",
    "banzhaf_msr",
    "estimate",
    "exact_banzhaf",
    "exact_shapley",
    "knn_shapley",
    "shed_grouped",
    "subset_chains",
    "tmc_shapley",
]
