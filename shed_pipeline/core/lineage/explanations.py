"""The answers to lineage questions, as small frozen dataclasses read by column name: where a row came
from, why it was quarantined or removed, how its cluster stood, how it was selected (RowExplanation
puts them together), a run's counts (RunRecord) and the difference of two runs (RunDiff)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class SourcePlace:
    """A row's record in the `rows` table: its split and where it was read."""

    split: str
    task: str | None
    source_file: str | None
    source_locator: int | None


@dataclass(frozen=True)
class Quarantine:
    """Why the reader set a row aside, and where it was read."""

    reason: str
    detail: str | None
    source_file: str | None
    source_locator: int | None


@dataclass(frozen=True)
class Removal:
    """The run that found a row gone from its source; `replaced_by`: the row now in its place (an edit)."""

    run_id: str
    replaced_by: str | None
    source_file: str | None
    source_locator: int | None


@dataclass(frozen=True)
class ClusterStanding:
    """A row's cluster: its proxy and size, and the cluster's score and rank among the scored ones."""

    cluster_id: int
    proxy_row_id: str
    size: int
    score: float | None
    rank: int | None
    clusters_total: int
    dropped_by_removal_rule: bool | None  # None: not scored, or a database older than the rule


@dataclass(frozen=True)
class Selection:
    """A selected row's record: the method that drew it, when, and why."""

    method: str
    draw_order: int
    reason: str


@dataclass(frozen=True)
class RunSelection:
    """A run's selection as a whole: its method and how many rows it selected."""

    method: str | None
    selected_rows: int


@dataclass(frozen=True)
class NearDuplicate:
    """A row removed before selection, and the near-identical row kept in its place."""

    kept_row_id: str
    cluster_id: int | None
    similarity: float


@dataclass(frozen=True)
class RowExplanation:
    """Why a row is (or isn't) in a run's curated set: `status` and `reason`, and the records they
    rest on (None where the row never got that far)."""

    row_id: str
    run_id: str
    selected: bool
    status: str  # selected, not selected, near duplicate, held out (... split), quarantined, removed, absent
    reason: str
    place: SourcePlace | None = None  # None: not among the run's rows
    quarantine: Quarantine | None = None
    removal: Removal | None = None
    cluster: ClusterStanding | None = None
    row_values: Mapping[str, float | None] = field(default_factory=dict)  # by kind
    method: str | None = None  # the selection method (pool rows)
    draw_order: int | None = None  # selected rows
    near_duplicate: NearDuplicate | None = None

    @property
    def is_proxy(self) -> bool:
        return self.cluster is not None and self.cluster.proxy_row_id == self.row_id

    def as_dict(self) -> dict[str, Any]:
        """What `LineageStore.why` returns (and `shed-pipeline lineage why` prints): these keys in
        this order, the parts a row lacks left out."""
        out: dict[str, Any] = {"row_id": self.row_id, "run_id": self.run_id}
        if self.place is not None:
            out.update(
                split=self.place.split,
                task=self.place.task,
                source_file=self.place.source_file,
                source_locator=self.place.source_locator,
            )
        if self.cluster is not None:
            out.update(
                cluster_id=self.cluster.cluster_id,
                proxy_row_id=self.cluster.proxy_row_id,
                is_proxy=self.is_proxy,
                cluster_size=self.cluster.size,
                cluster_score=self.cluster.score,
                cluster_rank=self.cluster.rank,
                clusters_total=self.cluster.clusters_total,
            )
        if self.row_values:
            out["row_values"] = dict(self.row_values)
        out.update(selected=self.selected, status=self.status)
        if self.quarantine is not None:
            out.update(
                reason=self.reason,
                detail=self.quarantine.detail,
                source_file=self.quarantine.source_file,
                source_locator=self.quarantine.source_locator,
            )
            return out
        if self.removal is not None:
            out.update(removed_in_run=self.removal.run_id, replaced_by=self.removal.replaced_by)
        if self.place is not None and self.place.split == "pool":
            out["method"] = self.method
        if self.selected:
            out["draw_order"] = self.draw_order
        if self.near_duplicate is not None:
            out.update(kept_row_id=self.near_duplicate.kept_row_id, similarity=self.near_duplicate.similarity)
        out["reason"] = self.reason
        return out


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run and its counts, as `shed-pipeline lineage runs` lists it."""

    run_id: str
    started_at: Any
    source: str | None
    source_fingerprint: str | None
    code_version: str | None
    rows_ok: int
    rows_quarantined: int
    rows_added: int
    rows_removed: int
    clusters_affected: int
    clusters: int
    selected: int
    method: str | None
    assets: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class AddedRow:
    """A row in run b's curated set and not in run a's, with b's reason."""

    row_id: str
    cluster_id: int | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class RemovedRow:
    """A row in run a's curated set and not in run b's: what it is in b, and why."""

    row_id: str
    status_in_b: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class RunDiff:
    """The curated sets of two runs compared: rows kept, added and removed."""

    run_a: str
    run_b: str
    method_a: str | None
    method_b: str | None
    kept: int
    added: tuple[AddedRow, ...]
    removed: tuple[RemovedRow, ...]

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["added"], out["removed"] = list(out["added"]), list(out["removed"])
        return out
