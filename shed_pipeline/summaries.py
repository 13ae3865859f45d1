"""What each asset reports about its work, as typed records: the numbers and names an asset puts in
its Dagster metadata and records in lineage, and that the CLI and tests read back. One class per
asset; a field is one metadata entry, under the field's name.

An asset builds its summary, and `metadata()` gives the entries (plots and tables that are only for
the UI are added beside them by the asset). `from_metadata` reads a materialization's entries back:
an entry a summary has no field for is kept in `extra` (per-strategy counts, such as an estimator's
or a per-row value's own), and a field that was not reported (None) reads as None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    asset: ClassVar[str]
    seconds: float | None = None  # the step's wall time
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # entries without a field

    def metadata(self) -> dict[str, Any]:
        """The entries, in field order, then the extra ones; a field left None is not reported."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{name: metadata.get(name) for name in names},
            extra={k: v for k, v in metadata.items() if k not in names},
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RawDatasetSummary(Summary):
    asset: ClassVar[str] = "raw_dataset"
    rows_available: int | None = None  # records in the source (before sampling)
    rows_in: int | None = None  # records read: rows_ok + rows_quarantined
    rows_ok: int | None = None
    rows_quarantined: int | None = None
    rows_pool: int | None = None
    rows_validation: int | None = None
    rows_test: int | None = None
    quarantine_reasons: Mapping[str, int] | None = None
    files_read: int | None = None
    files_skipped: int | None = None
    encodings: Mapping[str, Any] | None = None
    turns_dropped_after_last_assistant: int | None = None  # chat rows: turns after the last assistant turn
    turns_dropped_other_roles: int | None = None  # chat rows: tool (other-role) turns
    tasks: int | None = None
    rows_previous: int | None = None  # rows of the previous run of the same source
    rows_added: int | None = None  # against that run
    rows_removed: int | None = None
    rows_edited: int | None = None
    rows_unchanged: int | None = None
    previous_run: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbeddingsSummary(Summary):
    asset: ClassVar[str] = "embeddings"
    model_id: str | None = None
    device: str | None = None
    precision: str | None = None
    dim: int | None = None
    rows: int | None = None
    rows_embedded: int | None = None  # encoded by this run
    rows_reused: int | None = None  # from the embedding cache
    texts_encoded: int | None = None
    texts_reused: int | None = None
    model_loaded: bool | None = None  # False when every row came from the cache
    rows_per_second: float | None = None
    mean_norm: float | None = None
    shards: str | None = None  # sharded embeddings: the shards this step computed
    shard_count: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClustersSummary(Summary):
    asset: ClassVar[str] = "clusters"
    n_clusters: int | None = None
    clusters_total: int | None = None
    clusters_affected: int | None = None
    clusters_retired: int | None = None  # anchors whose members all left (kept: a new row near one revives it)
    full_refit: bool | None = None
    refit_reason: str | None = None
    rows_new: int | None = None
    rows_removed: int | None = None
    churn_since_fit: float | None = None
    distance_rise_since_fit: float | None = None
    fit_id: str | None = None
    pool_rows: int | None = None
    inertia: float | None = None
    fit_iterations: int | None = None
    fit_converged: bool | None = None
    device: str | None = None
    size_min: int | None = None
    size_median: float | None = None
    size_max: int | None = None
    nmi_vs_task: float | None = None  # agreement of the clusters with the rows' tasks (when rows have tasks)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RowValuesSummary(Summary):
    asset: ClassVar[str] = "row_values"
    kinds: str | None = None  # comma-separated; each kind's own counts are `<kind>_<count>` extras
    pool_rows: int | None = None
    validation_rows_in_split: int | None = None
    workers: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProxyShapleyScoresSummary(Summary):
    asset: ClassVar[str] = "proxy_shapley_scores"
    estimator: str | None = None
    utility: str | None = None
    players: int | None = None
    players_new: int | None = None
    coalitions: int | None = None
    coalitions_with_new_players: int | None = None
    utility_evaluations: int | None = None  # evaluated by this run
    utility_cache_hits: int | None = None
    utility_cache_hits_earlier_runs: int | None = None
    utility_key: str | None = None
    validation_rows: int | None = None
    utility_all_proxies: float | None = None
    sum_of_values: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    workers: int | None = None
    validation_rows_in_split: int | None = None
    validation_snapshot_renewed: bool | None = None
    validation_snapshot_reason: str | None = None
    validation_rows_waiting: int | None = None  # joined the split since the fit: used from the next fit
    validation_rows_gone: int | None = None  # left the split since the fit: in the snapshot until then


@dataclasses.dataclass(frozen=True, kw_only=True)
class CuratedSubsetSummary(Summary):
    asset: ClassVar[str] = "curated_subset"
    method: str | None = None
    method_settings: Mapping[str, Any] | None = None
    target_size: int | None = None
    auto_size: bool | None = None
    selected: int | None = None
    pool_rows: int | None = None
    near_duplicates_removed: int | None = None
    rows_after_dedup: int | None = None
    clusters_used: int | None = None
    clusters_total: int | None = None
    tasks_covered: int | None = None
    curated_jsonl: str | None = None
    curated_parquet: str | None = None
    curated_manifest: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationMetricsSummary(Summary):
    asset: ClassVar[str] = "evaluation_metrics"
    utility_subset: float | None = None  # held-out kNN utility of the curated subset
    utility_random_mean: float | None = None
    utility_full_pool: float | None = None
    evaluation_json: str | None = None


SUMMARIES: dict[str, type[Summary]] = {
    s.asset: s
    for s in (
        RawDatasetSummary,
        EmbeddingsSummary,
        ClustersSummary,
        RowValuesSummary,
        ProxyShapleyScoresSummary,
        CuratedSubsetSummary,
        EvaluationMetricsSummary,
    )
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArmProgress:
    """One finished evaluation arm, observed on evaluation_metrics while it runs: after an interrupt,
    the run's event log tells how many arms are done (and kept in the arms cache)."""

    arms_done: int
    arms_total: int
    arm: str
    cached: bool

    def metadata(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ArmProgress | None:
        """The progress an observation's entries hold; None for an observation of something else."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not all(name in metadata for name in names):
            return None
        return cls(**{name: metadata[name] for name in names})
