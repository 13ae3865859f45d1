"""Shapley value estimators over a `Utility` (players = cluster proxies), one strategy module each.

An estimator strategy's `run` is `run(utility, settings, seed, player_keys) -> EstimatorResult`
(player_keys: each player's stable key, its cluster id, so that seeded draws recur across runs).
Adding an estimator = its module (declaring `STRATEGY`) + one line below.
"""

from typing import Sequence

from shed_pipeline.core.estimators import banzhaf, chains, exact, knn_exact, tmc
from shed_pipeline.core.estimators import shed_grouped as shed_grouped_module
from shed_pipeline.core.estimators.banzhaf import banzhaf_msr
from shed_pipeline.core.estimators.base import EstimatorResult
from shed_pipeline.core.estimators.chains import subset_chains
from shed_pipeline.core.estimators.exact import exact_banzhaf, exact_shapley
from shed_pipeline.core.estimators.knn_exact import knn_shapley
from shed_pipeline.core.estimators.shed_grouped import shed_grouped  # the function (as before), not the module
from shed_pipeline.core.estimators.tmc import tmc_shapley
from shed_pipeline.core.strategies import Registry, StrategyError


class EstimatorRegistry(Registry):
    def check_requirements(self, name: str, **chosen: Sequence[str] | str) -> None:
        """As Registry's, and for a chosen name that does not fit, which estimators would."""
        try:
            super().check_requirements(name, **chosen)
        except StrategyError as e:
            strategy = self[name]
            for what, have in chosen.items():
                if isinstance(have, str) and have not in strategy.requires.get(what, (have,)):
                    fits = [s.name for s in self.values() if have in s.requires.get(what, (have,))]
                    need, choose = " or ".join(strategy.requires[what]), ", ".join(fits[:-1]) + " or " + fits[-1] if len(fits) > 1 else "".join(fits)
                    raise StrategyError(f"{self.kind} {name} needs {what} {need}, got {have!r} ({name}: {strategy.summary}); with {what} {have!r} choose {choose}") from None
            raise e


ESTIMATORS = EstimatorRegistry("estimator", [knn_exact.STRATEGY, shed_grouped_module.STRATEGY, tmc.STRATEGY, banzhaf.STRATEGY, chains.STRATEGY, exact.STRATEGY])


def estimate(name: str, utility, seed: int = 0, player_keys=None, **settings) -> EstimatorResult:
    """The named estimator's values of `utility`, with `settings` (the rest take their defaults)."""
    strategy, configured = ESTIMATORS.configure(name, settings)
    return strategy.run(utility, configured, seed, player_keys)


__all__ = ["ESTIMATORS", "EstimatorResult", "banzhaf_msr", "estimate", "exact_banzhaf", "exact_shapley", "knn_shapley", "shed_grouped", "subset_chains", "tmc_shapley"]
