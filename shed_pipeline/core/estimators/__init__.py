"""Shapley value estimators over a `Utility` (players = cluster proxies). See `estimate`."""

from shed_pipeline.core.estimators.base import ESTIMATORS, EstimatorResult, estimate
from shed_pipeline.core.estimators.exact import exact_shapley
from shed_pipeline.core.estimators.knn_exact import knn_shapley
from shed_pipeline.core.estimators.shed_grouped import shed_grouped
from shed_pipeline.core.estimators.tmc import tmc_shapley

__all__ = ["ESTIMATORS", "EstimatorResult", "estimate", "exact_shapley", "knn_shapley", "shed_grouped", "tmc_shapley"]
