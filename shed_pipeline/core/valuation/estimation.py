"""Valuing the cluster proxies: the estimation run against the evaluation cache; the values, their
ranks and the removal-index rule, and what the asset reports of them.

Players are the clusters' proxies in cluster order; the utility is measured on the given validation
rows. Every evaluation U(S) goes through the DuckDB evaluation cache, keyed by the utility's key and
the coalition's player identities, so a refresh computes only coalitions it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shed_pipeline.core.estimators import EstimatorResult
from shed_pipeline.core.progress import Log, silent
from shed_pipeline.core.utilities import CachedUtility, EvaluationStore
from shed_pipeline.core.utilities.inputs import BuiltUtility
from shed_pipeline.core.valuation.preparation import PreparedValuation, prepare_valuation
from shed_pipeline.core.valuation.removal import RemovalCurve, removal_curve

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


@dataclass(kw_only=True)
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


def value_proxies(
    utility: str,
    utility_settings: Any,
    estimator: str,
    estimator_settings: Any,
    *,
    clusters: pl.DataFrame,
    raw_dataset: pl.DataFrame,
    embeddings: pl.DataFrame,
    validation: pl.DataFrame,
    evaluation_store: Path,
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
        utility, utility_settings, estimator, estimator_settings,
        clusters=clusters, raw_dataset=raw_dataset, embeddings=embeddings, validation=validation,
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
        counted = CachedUtility(built.utility, built.identities, session, changed=changed, progress=progress)
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
    return Valuation(
        utility=u_strategy.name,
        estimator=e_strategy.name,
        scores=scores,
        result=res,
        built=built,
        full=full,
        curve=curve,
        counts=counts,
    )
