"""Shapley value estimators over a `Utility` (players = cluster proxies). See `estimate`."""

from shed_pipeline.core.estimators.banzhaf import banzhaf_msr
from shed_pipeline.core.estimators.base import ESTIMATORS, EstimatorResult, estimate
from shed_pipeline.core.estimators.chains import subset_chains
from shed_pipeline.core.estimators.exact import exact_banzhaf, exact_shapley
from shed_pipeline.core.estimators.knn_exact import knn_shapley
from shed_pipeline.core.estimators.shed_grouped import shed_grouped
from shed_pipeline.core.estimators.tmc import tmc_shapley

__all__ = ["ESTIMATORS", "EstimatorResult", "banzhaf_msr", "estimate", "exact_banzhaf", "exact_shapley", "knn_shapley", "shed_grouped", "subset_chains", "tmc_shapley"]
