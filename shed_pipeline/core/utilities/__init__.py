"""Utilities: the value U(S) of a coalition S of cluster proxies. Pluggable by name (see `build_utility`)."""

from shed_pipeline.core.utilities.base import CountingUtility, Utility
from shed_pipeline.core.utilities.cache import EvaluationStore, utility_key
from shed_pipeline.core.utilities.knn import KNNUtility

# Utilities the pipeline can build by name (assets/score.py). `lm` (core/utilities/lm.py) and `probe`
# (core/utilities/probe.py, on the target LM's features) are imported on demand: they load torch.
UTILITIES = ("knn", "lm", "probe")

__all__ = ["CountingUtility", "EvaluationStore", "KNNUtility", "Utility", "UTILITIES", "utility_key"]
