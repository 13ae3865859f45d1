"""A valuation's choices, checked, and its utility built: the utility and the estimator chosen by
name (core/utilities, core/estimators) with their settings, and the utility built on the proxies and
the validation rows. What the workers of a fanned-out estimation and its final pass each build from
the same inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from shed_pipeline.core.estimators import ESTIMATORS
from shed_pipeline.core.progress import Log, Progress, silent
from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.utilities import UTILITIES
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs
from shed_pipeline.core.valuation.rows import proxy_rows


def _choose(registry, name: str, settings: Any) -> tuple[Strategy, Any]:
    """A strategy and its settings: given as its settings object, or as a mapping (defaults for the rest)."""
    strategy = registry[name]
    if settings is None or isinstance(settings, Mapping):
        return registry.configure(name, settings)
    if not isinstance(settings, strategy.settings):
        raise TypeError(f"{registry.kind} {name} takes {strategy.settings.__name__}, got {type(settings).__name__}")
    return strategy, settings


# The utility a valuation uses unless told, and the estimator each utility uses unless told: the
# closed form where one exists, else the estimator that measured best per utility evaluation
# (bench/estimators.py). The asset's config defaults and the CLI's both read these.
DEFAULT_UTILITY = "knn"
DEFAULT_ESTIMATOR_FOR = {"knn": "knn_exact", "probe": "ts_chains", "lm": "banzhaf_msr"}
FALLBACK_ESTIMATOR = "banzhaf_msr"  # for a utility without its own entry: any utility's values


def default_estimator(utility: str) -> str:
    """The estimator `utility` is valued with when none is named."""
    return DEFAULT_ESTIMATOR_FOR.get(utility, FALLBACK_ESTIMATOR)


def check_choice(utility: str, estimator: str) -> None:
    """Fail before any work when the names are unknown or the pair does not fit (knn_exact is the
    closed form of the knn utility only)."""
    UTILITIES[utility]
    ESTIMATORS[estimator]
    ESTIMATORS.check_requirements(estimator, utility=utility)


@dataclass(kw_only=True)
class PreparedValuation:
    """A valuation's strategies and its built utility: what the workers of a fanned-out estimation
    and its final pass each build from the same inputs."""

    utility: Strategy
    utility_settings: Any
    estimator: Strategy
    estimator_settings: Any
    built: BuiltUtility
    proxy_ids: list[str]
    cluster_ids: np.ndarray

    @property
    def fans_out(self) -> bool:
        return can_fan_out(self.estimator, self.estimator_settings)

    def progress(self, log: Log, what: str = "") -> Progress | None:
        calls = (
            self.estimator.calls(len(self.proxy_ids), self.estimator_settings)
            if self.estimator.calls is not None
            else None
        )
        return (
            Progress(calls, f"{self.estimator.name} on {self.utility.name}{what}", log, unit="coalitions")
            if calls
            else None
        )


def can_fan_out(estimator: Strategy, settings: Any) -> bool:
    """Whether an estimation can be split into shares evaluated apart (its coalitions do not depend
    on the values: Banzhaf samples, subset chains, untruncated permutations)."""
    return estimator.fixed_coalitions is not None and bool(estimator.fixed_coalitions(settings))


def prepare_valuation(
    utility: str,
    utility_settings: Any,
    estimator: str,
    estimator_settings: Any,
    *,
    clusters: pl.DataFrame,
    raw_dataset: pl.DataFrame,
    embeddings: pl.DataFrame,
    validation: pl.DataFrame,
    seed: int = 0,
    device: str = "cpu",
    cache_dir: Path | None = None,
    feature_cache: Path | None = None,
    log: Log = silent,
    bigbench_archive: Path | None = None,
) -> PreparedValuation:
    """The strategies, checked, and the utility built on the proxies (players = `clusters`' proxies,
    in cluster order) and the `validation` rows."""
    check_choice(utility, estimator)
    u_strategy, u_settings = _choose(UTILITIES, utility, utility_settings)
    e_strategy, e_settings = _choose(ESTIMATORS, estimator, estimator_settings)
    if validation.height == 0:
        raise ValueError("the validation split is empty: raise validation_fraction or add rows")
    proxy_ids = clusters["proxy_row_id"].to_list()
    inputs = UtilityInputs(
        proxy_rows(raw_dataset, embeddings, proxy_ids),
        validation,
        device=device,
        cache_dir=cache_dir,
        log=log,
        feature_cache=feature_cache,
        seed=seed,
        bigbench_archive=bigbench_archive,
    )
    built: BuiltUtility = u_strategy.run(u_settings, inputs)
    return PreparedValuation(
        utility=u_strategy,
        utility_settings=u_settings,
        estimator=e_strategy,
        estimator_settings=e_settings,
        built=built,
        proxy_ids=proxy_ids,
        cluster_ids=clusters["cluster_id"].to_numpy(),
    )
