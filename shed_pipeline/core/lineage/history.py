"""What the pipeline reads back from earlier runs: the previous snapshot of a source (the row diff of
raw_dataset), the source fingerprints already seen (source_change_sensor) and the proxies scored last
(which coalitions an incremental valuation reuses). Read-only, like the queries."""

from __future__ import annotations

from shed_pipeline.core import duckdb_files
from shed_pipeline.core.lineage.database import LineageDatabase, scalar


class LineageHistory(LineageDatabase):
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
            previous = scalar(
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
