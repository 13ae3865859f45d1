"""Lineage in DuckDB: what every run read, clustered, scored and selected, and why.

Append-only across runs: a run writes only records tagged with its own run id, and a re-executed
step of the same run replaces only that run's records of that step. One writer at a time
(DuckDB's rule across processes): writers retry while another process holds the lock.
All SQL is parameterised.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import duckdb

from shed_pipeline.core import duckdb_files

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ NOT NULL, code_version VARCHAR,
        source VARCHAR, source_fingerprint VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS asset_runs (
        run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, materialized_at TIMESTAMPTZ NOT NULL,
        code_version VARCHAR, config JSON, summary JSON, inputs JSON, PRIMARY KEY (run_id, asset))""",
    """CREATE TABLE IF NOT EXISTS rows (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, split VARCHAR NOT NULL, task VARCHAR,
        source_file VARCHAR, source_locator BIGINT)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        run_id VARCHAR NOT NULL, source_file VARCHAR, source_locator BIGINT, row_id VARCHAR,
        reason VARCHAR NOT NULL, detail VARCHAR, excerpt VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS clusters (
        run_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, size BIGINT NOT NULL,
        proxy_row_id VARCHAR NOT NULL, inertia DOUBLE, affected BOOLEAN)""",
    # Databases written before incremental refresh lack the column.
    "ALTER TABLE clusters ADD COLUMN IF NOT EXISTS affected BOOLEAN",
    """CREATE TABLE IF NOT EXISTS row_changes (
        run_id VARCHAR NOT NULL, previous_run_id VARCHAR, row_id VARCHAR NOT NULL, change VARCHAR NOT NULL,
        source_file VARCHAR, source_locator BIGINT, counterpart VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS memberships (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, sq_distance DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS scores (
        run_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, proxy_row_id VARCHAR NOT NULL,
        score DOUBLE NOT NULL, stderr DOUBLE, rank BIGINT NOT NULL, estimator VARCHAR, utility VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS selections (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, cluster_id BIGINT, method VARCHAR NOT NULL,
        draw_order BIGINT NOT NULL, score DOUBLE, reason VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluations (
        run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, detail JSON)""",
    # One record per (evaluation arm, benchmark): the target LM fine-tuned on the arm's rows.
    """CREATE TABLE IF NOT EXISTS evaluation_arms (
        run_id VARCHAR NOT NULL, arm VARCHAR NOT NULL, replicate BIGINT NOT NULL, subset_size BIGINT NOT NULL,
        benchmark VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, steps BIGINT)""",
    # The removal-index rule's curve: utility left after dropping the `removed` lowest-valued proxies.
    """CREATE TABLE IF NOT EXISTS removal_curve (
        run_id VARCHAR NOT NULL, removed BIGINT NOT NULL, utility DOUBLE NOT NULL, chosen BOOLEAN NOT NULL)""",
    # Databases written before the removal rule lack the column.
    "ALTER TABLE scores ADD COLUMN IF NOT EXISTS dropped_by_removal_rule BOOLEAN",
    # What source_change_sensor compares (s3:// sources: keys, sizes, ETags); older databases lack it.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS source_version VARCHAR",
    # Chat rows: turns not used (after the last assistant turn, tool turns); older databases lack it.
    "ALTER TABLE rows ADD COLUMN IF NOT EXISTS turns_dropped BIGINT",
    # Near-duplicate removal before selection: each removed row, the twin kept in its place, and why.
    """CREATE TABLE IF NOT EXISTS near_duplicates (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, kept_row_id VARCHAR NOT NULL, cluster_id BIGINT,
        similarity DOUBLE NOT NULL)""",
    # Per-row values (e.g. knn_shapley, ifd) that selection methods order or weight rows by.
    """CREATE TABLE IF NOT EXISTS row_values (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, value DOUBLE)""",
    # Each evaluated arm against the random arms, paired over the same test rows / items.
    """CREATE TABLE IF NOT EXISTS evaluation_comparisons (
        run_id VARCHAR NOT NULL, arm VARCHAR NOT NULL, benchmark VARCHAR NOT NULL, metric VARCHAR NOT NULL,
        arm_mean DOUBLE, random_mean DOUBLE, random_std DOUBLE, difference DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
        z DOUBLE, n BIGINT)""",
]
RUN_TABLES = (
    "rows",
    "row_changes",
    "quarantine",
    "clusters",
    "memberships",
    "scores",
    "selections",
    "evaluations",
    "evaluation_arms",
    "removal_curve",
    "near_duplicates",
    "row_values",
    "evaluation_comparisons",
)


class LineageError(Exception):
    pass


class LineageStore:
    def __init__(self, path: str | Path, lock_timeout_s: float = 60.0):
        self.path = Path(path).expanduser()
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            raise LineageError(f"{self.path}: no lineage database (run the pipeline first, or pass --db)")
        try:
            con = duckdb_files.connect(self.path, read_only=read_only, lock_timeout_s=self.lock_timeout_s)
        except duckdb_files.StoreLockedError as exc:
            raise LineageError(str(exc)) from exc
        try:
            if not read_only:
                for stmt in SCHEMA:
                    con.execute(stmt)
            yield con
        finally:
            con.close()

    # -- writing -------------------------------------------------------------------------------

    def record_asset(
        self,
        run_id: str,
        asset: str,
        code_version: str | None,
        config: dict,
        summary: dict,
        inputs: dict[str, str | None] | None = None,
        source: str | None = None,
        source_fingerprint: str | None = None,
        source_version: str | None = None,
    ) -> None:
        now = datetime.now(timezone.utc)
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, started_at, code_version) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [run_id, now, code_version],
            )
            if source is not None:
                con.execute(
                    "UPDATE runs SET source = ?, source_fingerprint = ?, source_version = ? WHERE run_id = ?",
                    [source, source_fingerprint, source_version or source_fingerprint, run_id],
                )
            con.execute("DELETE FROM asset_runs WHERE run_id = ? AND asset = ?", [run_id, asset])
            con.execute(
                "INSERT INTO asset_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    asset,
                    now,
                    code_version,
                    json.dumps(config, default=str),
                    json.dumps(summary, default=str),
                    json.dumps(inputs or {}),
                ],
            )

    def write_table(self, table: str, run_id: str, data: Any) -> int:
        """Replace this run's records in `table` with `data` (a polars/arrow table without run_id)."""
        if table not in RUN_TABLES:
            raise ValueError(f"unknown lineage table {table!r}")
        import polars as pl

        df = data if isinstance(data, pl.DataFrame) else pl.DataFrame(data)
        df = df.with_columns(pl.lit(run_id).alias("run_id")).select(
            ["run_id", *[c for c in df.columns if c != "run_id"]]
        )
        with self.connect() as con:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # table name is from RUN_TABLES
            if df.height:
                con.register("incoming", df.to_arrow())
                cols = ", ".join(df.columns)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM incoming")
                con.unregister("incoming")
        return df.height

    # -- queries -------------------------------------------------------------------------------

    def previous_snapshot(self, source: str, run_id: str):
        """The rows (row_id, source_file, source_locator) of the latest earlier run that read
        `source`, and that run's id; (None, None) if there is none."""
        import polars as pl

        if not self.path.exists():
            return None, None
        with self.connect(read_only=True) as con:
            row = con.execute(
                """SELECT a.run_id FROM asset_runs a JOIN runs r ON r.run_id = a.run_id
                   WHERE a.asset = 'raw_dataset' AND r.source = ? AND a.run_id <> ?
                     AND json_extract_string(a.summary, '$.failed') IS NULL
                   ORDER BY a.materialized_at DESC, a.run_id DESC LIMIT 1""",
                [source, run_id],
            ).fetchall()  # fetchall: a half-read result blocks the next query on duckdb 2
            if not row:
                return None, None
            row = row[0]
            rel = con.sql(
                "SELECT row_id, source_file, source_locator FROM rows WHERE run_id = ? ORDER BY source_file, source_locator",
                params=[row[0]],
            )
            return pl.from_arrow(duckdb_files.arrow_table(rel)), row[0]

    def runs(self) -> list[dict]:
        with self.connect(read_only=True) as con:
            cur = con.execute(
                """SELECT r.run_id, r.started_at, r.source, r.source_fingerprint, r.code_version,
                          (SELECT count(*) FROM rows w WHERE w.run_id = r.run_id) AS rows_ok,
                          (SELECT count(*) FROM quarantine q WHERE q.run_id = r.run_id) AS rows_quarantined,
                          (SELECT count(*) FROM row_changes c WHERE c.run_id = r.run_id AND c.change = 'added') AS rows_added,
                          (SELECT count(*) FROM row_changes c WHERE c.run_id = r.run_id AND c.change = 'removed') AS rows_removed,
                          (SELECT count(*) FILTER (WHERE c.affected) FROM clusters c WHERE c.run_id = r.run_id) AS clusters_affected,
                          (SELECT count(*) FROM clusters c WHERE c.run_id = r.run_id) AS clusters,
                          (SELECT count(*) FROM selections s WHERE s.run_id = r.run_id) AS selected,
                          (SELECT any_value(s.method) FROM selections s WHERE s.run_id = r.run_id) AS method,
                          (SELECT string_agg(a.asset, ',' ORDER BY a.materialized_at) FROM asset_runs a WHERE a.run_id = r.run_id) AS assets
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
            row = con.execute(
                "SELECT run_id FROM asset_runs WHERE asset = 'proxy_shapley_scores' AND run_id <> ? ORDER BY materialized_at DESC, run_id DESC LIMIT 1",
                [run_id],
            ).fetchone()
            if row is None:
                return None
            return {r for (r,) in con.execute("SELECT proxy_row_id FROM scores WHERE run_id = ?", [row[0]]).fetchall()}

    def _resolve_run(self, con, run_id: str | None, need_table: str = "selections") -> str:
        if run_id:
            rows = con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?)", [run_id]).fetchall()
            if not rows:
                raise LineageError(f"no run {run_id!r} in {self.path}")
            if len(rows) > 1:
                raise LineageError(f"run prefix {run_id!r} is ambiguous ({len(rows)} runs)")
            return rows[0][0]
        row = con.execute(
            f"SELECT r.run_id FROM runs r WHERE EXISTS (SELECT 1 FROM {need_table} t WHERE t.run_id = r.run_id) ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1"
        ).fetchone()
        if not row:
            raise LineageError(f"no run with a curated subset in {self.path}")
        return row[0]

    @staticmethod
    def _input_run(con, run_id: str, asset: str, upstream: str) -> str:
        """The run that produced `upstream` as consumed by `asset` in `run_id` (itself if it ran there)."""
        row = con.execute("SELECT inputs FROM asset_runs WHERE run_id = ? AND asset = ?", [run_id, asset]).fetchone()
        if row and row[0]:
            produced = json.loads(row[0]).get(upstream)
            if produced:
                return produced
        return run_id

    def resolve_row(self, con, row_id: str) -> str:
        hits = con.execute(
            "SELECT DISTINCT row_id FROM (SELECT row_id FROM rows UNION ALL SELECT row_id FROM quarantine WHERE row_id IS NOT NULL) WHERE starts_with(row_id, ?) LIMIT 2",
            [row_id],
        ).fetchall()
        if not hits:
            raise LineageError(f"row {row_id!r} appears in no run of {self.path}")
        if len(hits) > 1:
            raise LineageError(f"row id prefix {row_id!r} is ambiguous; give more characters")
        return hits[0][0]

    def why(self, row_id: str, run_id: str | None = None) -> dict:
        """Why is (or isn't) this row in the curated set of a run (default: the latest)?"""
        with self.connect(read_only=True) as con:
            run = self._resolve_run(con, run_id)
            rid = self.resolve_row(con, row_id)
            rows_run = self._input_run(con, run, "curated_subset", "raw_dataset")
            clusters_run = self._input_run(con, run, "curated_subset", "clusters")
            scores_run = self._input_run(con, run, "curated_subset", "proxy_shapley_scores")
            out: dict[str, Any] = {"row_id": rid, "run_id": run}
            row = con.execute(
                "SELECT split, task, source_file, source_locator FROM rows WHERE run_id = ? AND row_id = ?",
                [rows_run, rid],
            ).fetchone()
            if row is None:
                q = con.execute(
                    "SELECT reason, detail, source_file, source_locator FROM quarantine WHERE run_id = ? AND row_id = ? LIMIT 1",
                    [rows_run, rid],
                ).fetchone()
                if q:
                    out.update(
                        selected=False,
                        status="quarantined",
                        reason=q[0],
                        detail=q[1],
                        source_file=q[2],
                        source_locator=q[3],
                    )
                else:
                    gone = con.execute(
                        """SELECT c.run_id, c.counterpart, c.source_file, c.source_locator FROM row_changes c JOIN runs r ON r.run_id = c.run_id
                           WHERE c.row_id = ? AND c.change = 'removed' AND r.started_at <= (SELECT started_at FROM runs WHERE run_id = ?)
                           ORDER BY r.started_at DESC LIMIT 1""",
                        [rid, rows_run],
                    ).fetchone()
                    if gone:
                        edit = f" (edited: its place, {gone[2]} #{gone[3]}, now holds row {gone[1]})" if gone[1] else ""
                        out.update(
                            selected=False,
                            status="removed",
                            removed_in_run=gone[0],
                            replaced_by=gone[1],
                            reason=f"removed from the source in run {gone[0]}{edit}",
                        )
                    else:
                        out.update(selected=False, status="absent", reason="the row was not in this run's source")
                return out
            out.update(split=row[0], task=row[1], source_file=row[2], source_locator=row[3])
            if row[0] != "pool":
                out.update(
                    selected=False,
                    status=f"held out ({row[0]} split)",
                    reason=f"rows in the {row[0]} split are never selected",
                )
                return out
            # A database last written before the removal rule has no such column (read-only here).
            has_dropped = con.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'scores' AND column_name = 'dropped_by_removal_rule'"
            ).fetchone()[0]
            dropped = "s.dropped_by_removal_rule" if has_dropped else "NULL"
            mem = con.execute(
                f"""SELECT m.cluster_id, c.proxy_row_id, c.size, s.score, s.rank, (SELECT count(*) FROM scores x WHERE x.run_id = s.run_id), {dropped}
                   FROM memberships m JOIN clusters c ON c.run_id = m.run_id AND c.cluster_id = m.cluster_id
                   LEFT JOIN scores s ON s.run_id = ? AND s.cluster_id = m.cluster_id
                   WHERE m.run_id = ? AND m.row_id = ?""",
                [scores_run, clusters_run, rid],
            ).fetchone()
            if mem:
                out.update(
                    cluster_id=mem[0],
                    proxy_row_id=mem[1],
                    is_proxy=mem[1] == rid,
                    cluster_size=mem[2],
                    cluster_score=mem[3],
                    cluster_rank=mem[4],
                    clusters_total=mem[5],
                )
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
            if values:
                out["row_values"] = values
            twin = (
                con.execute(
                    "SELECT kept_row_id, cluster_id, similarity FROM near_duplicates WHERE run_id = ? AND row_id = ?",
                    [run, rid],
                ).fetchone()
                if "near_duplicates" in tables
                else None
            )
            sel = con.execute(
                "SELECT method, draw_order, reason FROM selections WHERE run_id = ? AND row_id = ?", [run, rid]
            ).fetchone()
            method = con.execute(
                "SELECT any_value(method), count(*) FROM selections WHERE run_id = ?", [run]
            ).fetchone()
            if sel:
                out.update(selected=True, status="selected", method=sel[0], draw_order=sel[1], reason=sel[2])
            elif twin:
                reason = f"removed before selection as a near-duplicate of row {twin[0]} (cosine similarity {twin[2]:.4f} in cluster {twin[1]})"
                out.update(
                    selected=False,
                    status="near duplicate",
                    method=method[0],
                    kept_row_id=twin[0],
                    similarity=twin[2],
                    reason=reason,
                )
            else:
                auto = con.execute(
                    "SELECT json_extract(config, '$.auto_size')::BOOLEAN FROM asset_runs WHERE run_id = ? AND asset = 'curated_subset'",
                    [run],
                ).fetchone()
                if mem and mem[6] and auto and auto[0]:
                    reason = f"its cluster (ranked {mem[4]} of {mem[5]}) is among those the removal-index rule dropped"
                else:
                    reason = f"{method[0]} filled its {method[1]} rows without this row" + (
                        f" (its cluster ranked {mem[4]} of {mem[5]})" if mem and mem[4] is not None else ""
                    )
                if values:
                    reason += "; its row values: " + ", ".join(
                        f"{k} {v:.4g}" if v is not None else f"{k} none" for k, v in values.items()
                    )
                out.update(selected=False, status="not selected", method=method[0], reason=reason)
            return out

    def diff(self, run_a: str, run_b: str) -> dict:
        """Rows added to / removed from the curated set between two runs, with reasons."""
        with self.connect(read_only=True) as con:
            a = self._resolve_run(con, run_a)
            b = self._resolve_run(con, run_b)
            added = con.execute(
                """SELECT s.row_id, s.cluster_id, s.reason FROM selections s WHERE s.run_id = ?
                   AND s.row_id NOT IN (SELECT row_id FROM selections WHERE run_id = ?) ORDER BY s.draw_order""",
                [b, a],
            ).fetchall()
            removed_ids = [
                r[0]
                for r in con.execute(
                    """SELECT s.row_id FROM selections s WHERE s.run_id = ?
                   AND s.row_id NOT IN (SELECT row_id FROM selections WHERE run_id = ?) ORDER BY s.draw_order""",
                    [a, b],
                ).fetchall()
            ]
            kept = con.execute(
                "SELECT count(*) FROM selections a JOIN selections b ON a.row_id = b.row_id WHERE a.run_id = ? AND b.run_id = ?",
                [a, b],
            ).fetchone()[0]
            methods = [
                con.execute("SELECT any_value(method) FROM selections WHERE run_id = ?", [r]).fetchone()[0]
                for r in (a, b)
            ]
        removed = []
        for rid in removed_ids:
            w = self.why(rid, b)
            removed.append({"row_id": rid, "status_in_b": w["status"], "reason": w.get("reason")})
        return {
            "run_a": a,
            "run_b": b,
            "method_a": methods[0],
            "method_b": methods[1],
            "kept": int(kept),
            "added": [{"row_id": r[0], "cluster_id": r[1], "reason": r[2]} for r in added],
            "removed": removed,
        }


def _dicts(cur) -> list[dict]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]
