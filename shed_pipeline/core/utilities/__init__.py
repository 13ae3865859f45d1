"""Utilities: the value U(S) of a coalition S of cluster proxies. Pluggable by name (see `build_utility`)."""

from shed_pipeline.core.utilities.base import CountingUtility, Utility
from shed_pipeline.core.utilities.cache import EvaluationStore, utility_key
from shed_pipeline.core.utilities.knn import KNNUtility

# Utilities the pipeline can build by name (assets/score.py). `lm` is core/utilities/lm.py's
# LMUtility, imported on demand (it loads torch, transformers and peft).
UTILITIES = ("knn", "lm")

__all__ = ["CountingUtility", "EvaluationStore", "KNNUtility", "Utility", "UTILITIES", "utility_key"]
