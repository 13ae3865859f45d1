"""Common result type, seeded permutations, and dispatch by estimator name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ESTIMATORS = ("knn_exact", "shed_grouped", "tmc", "exact")


@dataclass
class EstimatorResult:
    values: np.ndarray  # (n_players,)
    stderr: np.ndarray | None = None  # per-player standard error of a sampling estimate
    info: dict[str, Any] = field(default_factory=dict)


def permutation(n: int, seed: int, t: int) -> np.ndarray:
    """The t-th permutation of a run: depends only on (seed, t), so permutation t recurs whatever T is."""
    return np.random.default_rng([int(seed), int(t)]).permutation(n)


class MarginalStats:
    """Running mean and standard error of per-permutation marginal contributions."""

    def __init__(self, n_players: int):
        self.total = np.zeros(n_players)
        self.total_sq = np.zeros(n_players)
        self.count = 0

    def add(self, marginals: np.ndarray) -> None:
        self.total += marginals
        self.total_sq += marginals**2
        self.count += 1

    def result(self, info: dict[str, Any]) -> EstimatorResult:
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean**2, 0.0)
        stderr = np.sqrt(var / self.count) if self.count > 1 else None
        return EstimatorResult(values=mean, stderr=stderr, info=info)


def estimate(name: str, utility, **params) -> EstimatorResult:
    from shed_pipeline.core.estimators.exact import exact_shapley
    from shed_pipeline.core.estimators.knn_exact import knn_shapley
    from shed_pipeline.core.estimators.shed_grouped import shed_grouped
    from shed_pipeline.core.estimators.tmc import tmc_shapley

    if name == "knn_exact":
        return knn_shapley(utility)
    if name == "shed_grouped":
        return shed_grouped(utility, permutations=params["permutations"], group_size=params.get("group_size"), seed=params["seed"])
    if name == "tmc":
        return tmc_shapley(utility, permutations=params["permutations"], tolerance=params.get("truncation_tolerance", 0.0), seed=params["seed"])
    if name == "exact":
        return exact_shapley(utility)
    raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
