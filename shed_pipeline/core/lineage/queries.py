"""Answering a user's lineage questions: which runs there were (`runs`), why a row is (or isn't) in a
run's curated set (`explain`, as a RowExplanation; `why`, its dict) and what changed between two runs
(`diff`). The answers are the frozen dataclasses of `explanations`.

Queries open read-only connections, so they never migrate a database: tables and columns newer than
the database count as empty.
"""

from __future__ import annotations

import json

from shed_pipeline.core.lineage.database import LineageDatabase, LineageError, dict_rows, one_record, scalar
from shed_pipeline.core.lineage.explanations import (
    AddedRow,
    ClusterStanding,
    NearDuplicate,
    Quarantine,
    Removal,
    RemovedRow,
    RowExplanation,
    RunDiff,
    RunRecord,
    RunSelection,
    Selection,
    SourcePlace,
)


class LineageQueries(LineageDatabase):
    def runs(self) -> list[RunRecord]:
        """Every run, oldest first, with its counts (rows read, quarantined, added, removed; clusters; selected)."""
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
            return [RunRecord(**row) for row in dict_rows(cur)]

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
            place = one_record(
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
                one_record(
                    con,
                    NearDuplicate,
                    "SELECT kept_row_id, cluster_id, similarity FROM near_duplicates WHERE run_id = ? AND row_id = ?",
                    [run, rid],
                )
                if "near_duplicates" in tables
                else None
            )
            sel = one_record(
                con,
                Selection,
                "SELECT method, draw_order, reason FROM selections WHERE run_id = ? AND row_id = ?",
                [run, rid],
            )
            whole = one_record(
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
            auto_size = scalar(
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

    def diff(self, run_a: str, run_b: str) -> RunDiff:
        """Rows added to / removed from the curated set between two runs, with reasons."""
        with self.connect(read_only=True) as con:
            a = self._resolve_run(con, run_a)
            b = self._resolve_run(con, run_b)
            added = dict_rows(
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
            kept = scalar(
                con,
                "SELECT count(*) FROM selections a JOIN selections b ON a.row_id = b.row_id "
                "WHERE a.run_id = ? AND b.run_id = ?",
                [a, b],
            )
            methods = [scalar(con, "SELECT any_value(method) FROM selections WHERE run_id = ?", [r]) for r in (a, b)]
        removed = []
        for rid in removed_ids:
            e = self.explain(rid, b)
            removed.append(RemovedRow(row_id=rid, status_in_b=e.status, reason=e.reason))
        return RunDiff(
            run_a=a,
            run_b=b,
            method_a=methods[0],
            method_b=methods[1],
            kept=int(kept),
            added=tuple(AddedRow(**row) for row in added),
            removed=tuple(removed),
        )

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
        latest = scalar(
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
        inputs = scalar(con, "SELECT inputs FROM asset_runs WHERE run_id = ? AND asset = ?", [run_id, asset])
        if inputs:
            produced = json.loads(inputs).get(upstream)
            if produced:
                return produced
        return run_id


def _explain_missing(con, rid: str, run: str, rows_run: str) -> RowExplanation:
    """A row not among the run's rows: quarantined by the reader, removed from the source, or never in it."""
    q = one_record(
        con,
        Quarantine,
        "SELECT reason, detail, source_file, source_locator FROM quarantine WHERE run_id = ? AND row_id = ? LIMIT 1",
        [rows_run, rid],
    )
    if q:
        return RowExplanation(rid, run, selected=False, status="quarantined", reason=q.reason, quarantine=q)
    gone = one_record(
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
    has_dropped = scalar(
        con,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'scores' AND column_name = 'dropped_by_removal_rule'",
    )
    dropped = "s.dropped_by_removal_rule" if has_dropped else "NULL"
    return one_record(
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
