"""Utilities: the value U(S) of a coalition S of cluster proxies, one strategy module each.

A utility strategy's `run` builds it: `build(settings, UtilityInputs) -> BuiltUtility` (the utility,
its evaluation-cache key and description, the players' identities). Adding a utility = its module
(declaring `STRATEGY`) + one line below. The lm and probe modules import torch only inside `build`.
"""

from shed_pipeline.core.strategies import Registry
from shed_pipeline.core.utilities import knn, lm, probe
from shed_pipeline.core.utilities.base import CachedUtility, Utility
from shed_pipeline.core.utilities.cache import EvaluationStore, utility_key
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs
from shed_pipeline.core.utilities.knn import KNNUtility

UTILITIES = Registry("utility", [knn.STRATEGY, lm.STRATEGY, probe.STRATEGY])

__all__ = [
    "BuiltUtility",
    "CachedUtility",
    "EvaluationStore",
    "KNNUtility",
    "UTILITIES",
    "Utility",
    "UtilityInputs",
    "utility_key",
]
