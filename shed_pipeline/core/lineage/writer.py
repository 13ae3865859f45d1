"""Writing lineage: a run's record of each asset it materialized, and a run's records in the run
tables. A re-executed step of the same run replaces only that run's records of that step."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from shed_pipeline.core.lineage.database import LineageDatabase
from shed_pipeline.core.lineage.schema import RUN_TABLES


class LineageWriter(LineageDatabase):
    def record_asset(
        self,
        run_id: str,
        asset: str,
        code_version: str | None,
        config: dict,
        summary: dict,
        *,
        inputs: dict[str, str | None] | None = None,
        source: str | None = None,
        source_fingerprint: str | None = None,
        source_version: str | None = None,
    ) -> None:
        """Record that `run_id` materialized `asset` (with its config, summary and the runs its
        inputs came from); the run itself is recorded on its first asset, its source when given."""
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
