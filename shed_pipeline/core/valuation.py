"""Valuing the cluster proxies: one utility (core/utilities) and one estimator (core/estimators), both
chosen by name, run against the evaluation cache; the values, their ranks and the removal-index rule.

Players are the clusters' proxies in cluster order; the utility is measured on the given validation
rows. Every evaluation U(S) goes through the DuckDB evaluation cache, keyed by the utility's key and
the coalition's player identities, so a refresh computes only coalitions it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from shed_pipeline.core.estimators import ESTIMATORS, EstimatorResult
from shed_pipeline.core.progress import Log, Progress, silent
from shed_pipeline.core.removal import RemovalCurve, removal_curve
from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.utilities import UTILITIES, CountingUtility, EvaluationStore
from shed_pipeline.core.utilities.inputs import ROW_COLUMNS, BuiltUtility, UtilityInputs

SCORES_SCHEMA = {
    "cluster_id": pl.Int64,
    "proxy_row_id": pl.Utf8,
    "score": pl.Float64,
    "stderr": pl.Float64,
    "rank": pl.Int64,
    "estimator": pl.Utf8,
    "utility": pl.Utf8,
    "dropped_by_removal_rule": pl.Boolean,
}


def _columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in ROW_COLUMNS if c != "messages" or c in frame.columns]


def validation_rows(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame) -> pl.DataFrame:
    """The current validation split with its vectors, in row order: what a validation snapshot keeps
    (enough for any utility: texts for a language model, vectors for knn)."""
    val = raw_dataset.filter(pl.col("split") == "validation").join(
        embeddings, on="row_id", how="inner", maintain_order="left"
    )
    return val.select(_columns(val))


def proxy_rows(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, proxy_ids: list[str]) -> pl.DataFrame:
    """The proxies' rows with their vectors, in the order of `proxy_ids`."""
    wanted = pl.DataFrame({"row_id": proxy_ids}, schema={"row_id": pl.Utf8})
    rows = raw_dataset.join(wanted, on="row_id", how="semi").join(embeddings, on="row_id", how="inner")
    missing = wanted.join(rows, on="row_id", how="anti")
    if missing.height:
        raise ValueError(
            f"{missing.height} cluster proxies (e.g. {missing['row_id'][0]}) have no row or no vector: re-materialize clusters"
        )
    proxies = wanted.join(rows, on="row_id", how="left", maintain_order="left")
    return proxies.select(_columns(proxies))


def _choose(registry, name: str, settings: Any) -> tuple[Strategy, Any]:
    """A strategy and its settings: given as its settings object, or as a mapping (defaults for the rest)."""
    strategy = registry[name]
    if settings is None or isinstance(settings, Mapping):
        return registry.configure(name, settings)
    if not isinstance(settings, strategy.settings):
        raise TypeError(f"{registry.kind} {name} takes {strategy.settings.__name__}, got {type(settings).__name__}")
    return strategy, settings


def check_choice(utility: str, estimator: str) -> None:
    """Fail before any work when the names are unknown or the pair does not fit (knn_exact is the
    closed form of the knn utility only)."""
    UTILITIES[utility]
    ESTIMATORS[estimator]
    ESTIMATORS.check_requirements(estimator, utility=utility)


@dataclass
class Valuation:
    utility: str
    estimator: str
    scores: pl.DataFrame  # SCORES_SCHEMA, one row per proxy in cluster order
    result: EstimatorResult
    built: BuiltUtility
    full: float  # U(all proxies)
    curve: RemovalCurve | None
    counts: dict[str, int] = field(default_factory=dict)  # the evaluation cache's counters

    @property
    def values(self) -> np.ndarray:
        return self.scores["score"].to_numpy()

    def metadata(self) -> dict[str, Any]:
        """Plain numbers and names: what the asset reports and lineage records."""
        values = self.values
        meta: dict[str, Any] = {
            "estimator": self.estimator,
            "utility": self.utility,
            "players": len(values),
            **self.counts,
            "utility_key": self.built.key,
            "validation_rows": self.built.description["validation_rows"],
            "utility_all_proxies": self.full,
            "sum_of_values": float(values.sum()),
            "score_min": float(values.min()),
            "score_max": float(values.max()),
            **{f"estimator_{k}": v for k, v in self.result.info.items()},
        }
        if self.curve is not None:
            meta["removal_best"] = self.curve.best  # proxies (clusters) the removal-index rule drops
            meta["removal_utility_kept"] = self.curve.utility[self.curve.removed.index(self.curve.best)]
            meta["removal_utility_none_dropped"] = self.curve.utility[0]
        return meta

    def removal_frame(self) -> pl.DataFrame | None:
        """The removal curve's lineage table (removed, utility, chosen), when the rule ran."""
        c = self.curve
        return (
            None
            if c is None
            else pl.DataFrame({"removed": c.removed, "utility": c.utility, "chosen": [r == c.best for r in c.removed]})
        )


@dataclass
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
    clusters: pl.DataFrame,
    raw_dataset: pl.DataFrame,
    embeddings: pl.DataFrame,
    validation: pl.DataFrame,
    *,
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
        u_strategy, u_settings, e_strategy, e_settings, built, proxy_ids, clusters["cluster_id"].to_numpy()
    )


def evaluate_share(
    prepared: PreparedValuation, evaluation_store: Path, share: int, shares: int, *, seed: int = 0, log: Log = silent
) -> dict[str, int]:
    """Evaluate one share (0 .. shares-1) of the coalitions the estimation will ask for, into the
    evaluation cache, where the final pass (`estimate`) finds them. The union of the shares is every
    coalition of the estimation and U(all proxies), each evaluated by one share."""
    if not prepared.fans_out:
        raise ValueError(
            f"estimator {prepared.estimator.name} with these settings chooses its coalitions from the values: it cannot be split into shares"
        )
    if not 0 <= share < shares:
        raise ValueError(f"share {share} of {shares} does not exist")
    with EvaluationStore(evaluation_store).session(prepared.built.key, prepared.built.description) as session:
        progress = prepared.progress(log, f", share {share + 1} of {shares}")
        answered = CountingUtility(
            prepared.built.utility, prepared.built.identities, session, progress=progress, share=(share, shares)
        )
        prepared.estimator.run(answered, prepared.estimator_settings, seed, prepared.cluster_ids)
        answered.progress = None
        answered.value(np.ones(len(prepared.proxy_ids), dtype=bool))
        if progress is not None:
            progress.finish()
    return {
        "share": share,
        "shares": shares,
        "coalitions": answered.coalitions,
        "utility_evaluations": answered.evaluations,
        "utility_cache_hits": answered.stored_hits,
        "coalitions_of_other_shares": answered.left_to_others,
    }


def value_proxies(
    utility: str,
    utility_settings: Any,
    estimator: str,
    estimator_settings: Any,
    clusters: pl.DataFrame,
    raw_dataset: pl.DataFrame,
    embeddings: pl.DataFrame,
    validation: pl.DataFrame,
    evaluation_store: Path,
    *,
    seed: int = 0,
    previous_proxies: set[str] | None = None,
    removal_points: int = 0,
    removal_max_fraction: float = 0.5,
    device: str = "cpu",
    cache_dir: Path | None = None,
    feature_cache: Path | None = None,
    log: Log = silent,
    bigbench_archive: Path | None = None,
) -> Valuation:
    """One value per cluster proxy (players = `clusters`' proxies, in cluster order), its rank (1 =
    most valuable; ties by cluster id) and, for sampling estimators, a standard error.

    `validation`: the rows U is measured on (validation_rows, or a snapshot of them). Permutations and
    samples are drawn by cluster id, so unchanged coalitions recur across runs; `previous_proxies`
    (the proxies of the last valuation; None: none) only counts the coalitions that hold new ones.
    `removal_points` > 0 also runs TS-DShapley's removal-index rule on that many points."""
    prepared = prepare_valuation(
        utility, utility_settings, estimator, estimator_settings, clusters, raw_dataset, embeddings, validation,
        seed=seed, device=device, cache_dir=cache_dir, feature_cache=feature_cache, log=log,
        bigbench_archive=bigbench_archive,
    )  # fmt: skip
    return estimate(
        prepared,
        clusters,
        evaluation_store,
        seed=seed,
        previous_proxies=previous_proxies,
        removal_points=removal_points,
        removal_max_fraction=removal_max_fraction,
        log=log,
    )


def estimate(
    prepared: PreparedValuation,
    clusters: pl.DataFrame,
    evaluation_store: Path,
    *,
    seed: int = 0,
    previous_proxies: set[str] | None = None,
    removal_points: int = 0,
    removal_max_fraction: float = 0.5,
    log: Log = silent,
) -> Valuation:
    """The estimation itself, against the evaluation cache (after `evaluate_share` of every share,
    every coalition it asks for is a cache hit); see `value_proxies`."""
    u_strategy, e_strategy, e_settings, built = (
        prepared.utility,
        prepared.estimator,
        prepared.estimator_settings,
        prepared.built,
    )
    proxy_ids, cluster_ids = prepared.proxy_ids, prepared.cluster_ids
    changed = np.array([previous_proxies is None or p not in previous_proxies for p in proxy_ids], dtype=bool)
    with EvaluationStore(evaluation_store).session(built.key, built.description) as session:
        progress = prepared.progress(log)
        counted = CountingUtility(built.utility, built.identities, session, changed=changed, progress=progress)
        res = e_strategy.run(counted, e_settings, seed, cluster_ids)
        if progress is not None:
            progress.finish()
            counted.progress = None  # the full set and the removal curve are not the estimator's
        full = counted.value(np.ones(len(proxy_ids), dtype=bool))
        values = np.asarray(res.values, dtype=np.float64)
        curve = (
            removal_curve(counted, values, cluster_ids, removal_max_fraction, removal_points)
            if removal_points
            else None
        )
    order = sorted(range(len(values)), key=lambda i: (-values[i], int(cluster_ids[i])))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(1, len(values) + 1)
    scores = pl.DataFrame(
        {
            "cluster_id": clusters["cluster_id"],
            "proxy_row_id": proxy_ids,
            "score": values,
            "stderr": res.stderr if res.stderr is not None else [None] * len(values),
            "rank": rank,
            "estimator": [e_strategy.name] * len(values),
            "utility": [u_strategy.name] * len(values),
            "dropped_by_removal_rule": curve.dropped if curve is not None else [None] * len(values),
        },
        schema=SCORES_SCHEMA,
    )
    counts = {
        "players_new": int(changed.sum()),  # proxies not scored by the previous valuation
        "utility_evaluations": counted.evaluations,
        "utility_cache_hits": counted.cache_hits,
        "utility_cache_hits_earlier_runs": counted.stored_hits,
        "coalitions": counted.coalitions,
        "coalitions_with_new_players": counted.coalitions_changed,
    }
    return Valuation(u_strategy.name, e_strategy.name, scores, res, built, full, curve, counts)
