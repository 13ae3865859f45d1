"""Utilities: the value U(S) of a coalition S of cluster proxies. Pluggable by name (see `build_utility`)."""

from shed_pipeline.core.utilities.base import CountingUtility, Utility
from shed_pipeline.core.utilities.cache import EvaluationStore, utility_key
from shed_pipeline.core.utilities.knn import KNNUtility

# Utilities the pipeline can build by name (assets/score.py). `LMUtility` (core/utilities/lm.py,
# imported on demand: it needs torch and peft) joins them once the asset wiring lands (issue 4).
UTILITIES = ("knn",)

__all__ = ["CountingUtility", "EvaluationStore", "KNNUtility", "Utility", "UTILITIES", "utility_key"]
