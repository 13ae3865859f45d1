"""Reading lineage: runs and their sources, the previous run's rows and proxies, why a row is (or
isn't) in a run's curated set (`explain`, as a RowExplanation), and what changed between two runs.

Queries open read-only connections, so they never migrate a database: tables and columns newer than
the database count as empty. Records are read by column name into small frozen dataclasses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from shed_pipeline.core import duckdb_files
from shed_pipeline.core.lineage.database import LineageDatabase, LineageError

R = TypeVar("R")


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


class LineageQueries(LineageDatabase):
    def previous_snapshot(self, source: str, run_id: str):
        """The rows (row_id, source_file, source_locator) of the latest earlier run that read
        `source`, and that run's id; (None, None) if there is none."""
        import polars as pl

        if not self.path.exists():
            return None, None
        with self.connect(read_only=True) as con:
            found = [
                r
                for (r,) in con.execute(
                    """SELECT a.run_id FROM asset_runs a JOIN runs r ON r.run_id = a.run_id
                       WHERE a.asset = 'raw_dataset' AND r.source = ? AND a.run_id <> ?
                         AND json_extract_string(a.summary, '$.failed') IS NULL
                       ORDER BY a.materialized_at DESC, a.run_id DESC LIMIT 1""",
                    [source, run_id],
                ).fetchall()  # fetchall: a half-read result blocks the next query on duckdb 2
            ]
            if not found:
                return None, None
            previous = found[0]
            rel = con.sql(
                "SELECT row_id, source_file, source_locator FROM rows WHERE run_id = ? "
                "ORDER BY source_file, source_locator",
                params=[previous],
            )
            return pl.from_arrow(duckdb_files.arrow_table(rel)), previous

    def runs(self) -> list[dict]:
        with self.connect(read_only=True) as con:
            cur = con.execute(
                """SELECT r.run_id, r.started_at, r.source, r.source_fingerprint, r.code_version,
                          (SELECT count(*) FROM rows w WHERE w.run_id = r.run_id) AS rows_ok,
                          (SELECT count(*) FROM quarantine q WHERE q.run_id = r.run_id) AS rows_quarantined,
                          (SELECT count(*) FROM row_changes c
                           WHERE c.run_id = r.run_id AND c.change = 'added') AS rows_added,
                          (SELECT count(*) FROM row_changes c
                           WHERE c.run_id = r.run_id AND c.change = 'removed') AS rows_removed,
                          (SELECT count(*) FILTER (WHERE c.affected) FROM clusters c
                           WHERE c.run_id = r.run_id) AS clusters_affected,
                          (SELECT count(*) FROM clusters c WHERE c.run_id = r.run_id) AS clusters,
                          (SELECT count(*) FROM selections s WHERE s.run_id = r.run_id) AS selected,
                          (SELECT any_value(s.method) FROM selections s WHERE s.run_id = r.run_id) AS method,
                          (SELECT string_agg(a.asset, ',' ORDER BY a.materialized_at) FROM asset_runs a
                           WHERE a.run_id = r.run_id) AS assets
                   FROM runs r ORDER BY r.started_at, r.run_id"""
            )
            return _dicts(cur)

    def fingerprints_of(self, source: str) -> set[str]:
        """Source fingerprints and versions (what a watcher compares) of every run that read `source`."""
        if not self.path.exists():
            return set()
        with self.connect(read_only=True) as con:
            cols = {
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
                ).fetchall()
            }
            version = "source_version" if "source_version" in cols else "NULL"  # a read-only open cannot migrate
            found = con.execute(f"SELECT source_fingerprint, {version} FROM runs WHERE source = ?", [source]).fetchall()
        return {v for row in found for v in row if v is not None}

    def previous_proxies(self, run_id: str) -> set[str] | None:
        """The proxies scored by the latest earlier run that scored any; None if none did."""
        if not self.path.exists():
            return None
        with self.connect(read_only=True) as con:
            previous = _scalar(
                con,
                "SELECT run_id FROM asset_runs WHERE asset = 'proxy_shapley_scores' AND run_id <> ? "
                "ORDER BY materialized_at DESC, run_id DESC LIMIT 1",
                [run_id],
            )
            if previous is None:
                return None
            return {
                r for (r,) in con.execute("SELECT proxy_row_id FROM scores WHERE run_id = ?", [previous]).fetchall()
            }

    def resolve_row(self, con, row_id: str) -> str:
        """The one row id that starts with `row_id` in any run (rows or quarantine)."""
        hits = [
            r
            for (r,) in con.execute(
                "SELECT DISTINCT row_id FROM (SELECT row_id FROM rows UNION ALL "
                "SELECT row_id FROM quarantine WHERE row_id IS NOT NULL) WHERE starts_with(row_id, ?) LIMIT 2",
                [row_id],
            ).fetchall()
        ]
        if not hits:
            raise LineageError(f"row {row_id!r} appears in no run of {self.path}")
        if len(hits) > 1:
            raise LineageError(f"row id prefix {row_id!r} is ambiguous; give more characters")
        return hits[0]

    def why(self, row_id: str, run_id: str | None = None) -> dict:
        """Why is (or isn't) this row in the curated set of a run (default: the latest)? `explain`
        as a dict (the keys of RowExplanation.as_dict)."""
        return self.explain(row_id, run_id).as_dict()

    def explain(self, row_id: str, run_id: str | None = None) -> RowExplanation:
        """Why is (or isn't) this row in the curated set of a run (default: the latest)?"""
        with self.connect(read_only=True) as con:
            run = self._resolve_run(con, run_id)
            rid = self.resolve_row(con, row_id)
            rows_run = self._input_run(con, run, "curated_subset", "raw_dataset")
            clusters_run = self._input_run(con, run, "curated_subset", "clusters")
            scores_run = self._input_run(con, run, "curated_subset", "proxy_shapley_scores")
            place = _one(
                con,
                SourcePlace,
                "SELECT split, task, source_file, source_locator FROM rows WHERE run_id = ? AND row_id = ?",
                [rows_run, rid],
            )
            if place is None:
                return _explain_missing(con, rid, run, rows_run)
            if place.split != "pool":
                return RowExplanation(
                    rid,
                    run,
                    selected=False,
                    status=f"held out ({place.split} split)",
                    reason=f"rows in the {place.split} split are never selected",
                    place=place,
                )
            cluster = _cluster_standing(con, rid, clusters_run=clusters_run, scores_run=scores_run)
            # Tables newer than the database (read-only here: no migration) count as empty.
            tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            values: dict[str, float | None] = {}
            if "row_values" in tables:
                values_run = self._input_run(con, run, "curated_subset", "row_values")
                values = dict(
                    con.execute(
                        "SELECT kind, value FROM row_values WHERE run_id = ? AND row_id = ? ORDER BY kind",
                        [values_run, rid],
                    ).fetchall()
                )
            twin = (
                _one(
                    con,
                    NearDuplicate,
                    "SELECT kept_row_id, cluster_id, similarity FROM near_duplicates WHERE run_id = ? AND row_id = ?",
                    [run, rid],
                )
                if "near_duplicates" in tables
                else None
            )
            sel = _one(
                con,
                Selection,
                "SELECT method, draw_order, reason FROM selections WHERE run_id = ? AND row_id = ?",
                [run, rid],
            )
            whole = _one(
                con,
                RunSelection,
                "SELECT any_value(method) AS method, count(*) AS selected_rows FROM selections WHERE run_id = ?",
                [run],
            )
            found = {"place": place, "cluster": cluster, "row_values": values}
            if sel:
                return RowExplanation(
                    rid,
                    run,
                    selected=True,
                    status="selected",
                    reason=sel.reason,
                    method=sel.method,
                    draw_order=sel.draw_order,
                    **found,
                )
            if twin:
                reason = (
                    f"removed before selection as a near-duplicate of row {twin.kept_row_id} "
                    f"(cosine similarity {twin.similarity:.4f} in cluster {twin.cluster_id})"
                )
                return RowExplanation(
                    rid,
                    run,
                    selected=False,
                    status="near duplicate",
                    reason=reason,
                    method=whole.method,
                    near_duplicate=twin,
                    **found,
                )
            auto_size = _scalar(
                con,
                "SELECT json_extract(config, '$.auto_size')::BOOLEAN FROM asset_runs "
                "WHERE run_id = ? AND asset = 'curated_subset'",
                [run],
            )
            if cluster and cluster.dropped_by_removal_rule and auto_size:
                reason = (
                    f"its cluster (ranked {cluster.rank} of {cluster.clusters_total}) is among those "
                    "the removal-index rule dropped"
                )
            else:
                reason = f"{whole.method} filled its {whole.selected_rows} rows without this row" + (
                    f" (its cluster ranked {cluster.rank} of {cluster.clusters_total})"
                    if cluster and cluster.rank is not None
                    else ""
                )
            if values:
                reason += "; its row values: " + ", ".join(
                    f"{k} {v:.4g}" if v is not None else f"{k} none" for k, v in values.items()
                )
            return RowExplanation(
                rid, run, selected=False, status="not selected", reason=reason, method=whole.method, **found
            )

    def diff(self, run_a: str, run_b: str) -> dict:
        """Rows added to / removed from the curated set between two runs, with reasons."""
        with self.connect(read_only=True) as con:
            a = self._resolve_run(con, run_a)
            b = self._resolve_run(con, run_b)
            added = _dicts(
                con.execute(
                    """SELECT s.row_id, s.cluster_id, s.reason FROM selections s WHERE s.run_id = ?
                       AND s.row_id NOT IN (SELECT row_id FROM selections WHERE run_id = ?) ORDER BY s.draw_order""",
                    [b, a],
                )
            )
            removed_ids = [
                r
                for (r,) in con.execute(
                    """SELECT s.row_id FROM selections s WHERE s.run_id = ?
                   AND s.row_id NOT IN (SELECT row_id FROM selections WHERE run_id = ?) ORDER BY s.draw_order""",
                    [a, b],
                ).fetchall()
            ]
            kept = _scalar(
                con,
                "SELECT count(*) FROM selections a JOIN selections b ON a.row_id = b.row_id "
                "WHERE a.run_id = ? AND b.run_id = ?",
                [a, b],
            )
            methods = [_scalar(con, "SELECT any_value(method) FROM selections WHERE run_id = ?", [r]) for r in (a, b)]
        removed = []
        for rid in removed_ids:
            e = self.explain(rid, b)
            removed.append({"row_id": rid, "status_in_b": e.status, "reason": e.reason})
        return {
            "run_a": a,
            "run_b": b,
            "method_a": methods[0],
            "method_b": methods[1],
            "kept": int(kept),
            "added": added,
            "removed": removed,
        }

    def _resolve_run(self, con, run_id: str | None, need_table: str = "selections") -> str:
        if run_id:
            matches = [
                r for (r,) in con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?)", [run_id]).fetchall()
            ]
            if not matches:
                raise LineageError(f"no run {run_id!r} in {self.path}")
            if len(matches) > 1:
                raise LineageError(f"run prefix {run_id!r} is ambiguous ({len(matches)} runs)")
            return matches[0]
        latest = _scalar(
            con,
            f"SELECT r.run_id FROM runs r WHERE EXISTS (SELECT 1 FROM {need_table} t WHERE t.run_id = r.run_id) "
            "ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1",
        )
        if latest is None:
            raise LineageError(f"no run with a curated subset in {self.path}")
        return latest

    @staticmethod
    def _input_run(con, run_id: str, asset: str, upstream: str) -> str:
        """The run that produced `upstream` as consumed by `asset` in `run_id` (itself if it ran there)."""
        inputs = _scalar(con, "SELECT inputs FROM asset_runs WHERE run_id = ? AND asset = ?", [run_id, asset])
        if inputs:
            produced = json.loads(inputs).get(upstream)
            if produced:
                return produced
        return run_id


def _explain_missing(con, rid: str, run: str, rows_run: str) -> RowExplanation:
    """A row not among the run's rows: quarantined by the reader, removed from the source, or never in it."""
    q = _one(
        con,
        Quarantine,
        "SELECT reason, detail, source_file, source_locator FROM quarantine WHERE run_id = ? AND row_id = ? LIMIT 1",
        [rows_run, rid],
    )
    if q:
        return RowExplanation(rid, run, selected=False, status="quarantined", reason=q.reason, quarantine=q)
    gone = _one(
        con,
        Removal,
        """SELECT c.run_id, c.counterpart AS replaced_by, c.source_file, c.source_locator
           FROM row_changes c JOIN runs r ON r.run_id = c.run_id
           WHERE c.row_id = ? AND c.change = 'removed'
             AND r.started_at <= (SELECT started_at FROM runs WHERE run_id = ?)
           ORDER BY r.started_at DESC LIMIT 1""",
        [rid, rows_run],
    )
    if gone:
        edit = (
            f" (edited: its place, {gone.source_file} #{gone.source_locator}, now holds row {gone.replaced_by})"
            if gone.replaced_by
            else ""
        )
        return RowExplanation(
            rid,
            run,
            selected=False,
            status="removed",
            reason=f"removed from the source in run {gone.run_id}{edit}",
            removal=gone,
        )
    return RowExplanation(rid, run, selected=False, status="absent", reason="the row was not in this run's source")


def _cluster_standing(con, rid: str, *, clusters_run: str, scores_run: str) -> ClusterStanding | None:
    # A database last written before the removal rule has no such column (read-only here).
    has_dropped = _scalar(
        con,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'scores' AND column_name = 'dropped_by_removal_rule'",
    )
    dropped = "s.dropped_by_removal_rule" if has_dropped else "NULL"
    return _one(
        con,
        ClusterStanding,
        f"""SELECT m.cluster_id, c.proxy_row_id, c.size, s.score, s.rank,
                  (SELECT count(*) FROM scores x WHERE x.run_id = s.run_id) AS clusters_total,
                  {dropped} AS dropped_by_removal_rule
           FROM memberships m JOIN clusters c ON c.run_id = m.run_id AND c.cluster_id = m.cluster_id
           LEFT JOIN scores s ON s.run_id = ? AND s.cluster_id = m.cluster_id
           WHERE m.run_id = ? AND m.row_id = ?""",
        [scores_run, clusters_run, rid],
    )


def _one(con, record: type[R], sql: str, params: list) -> R | None:
    """The first row of `sql` as a `record`, its fields filled by column name; None without a row."""
    cur = con.execute(sql, params)
    row = cur.fetchone()
    if row is None:
        return None
    return record(**dict(zip([d[0] for d in cur.description], row, strict=True)))


def _scalar(con, sql: str, params: list | None = None) -> Any:
    """The first column of the first row of `sql`; None without a row."""
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def _dicts(cur) -> list[dict]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]
