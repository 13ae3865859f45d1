"""The lineage database file and its connections: one writer at a time (DuckDB's rule across
processes, so writers wait while another process holds the lock), and read-only connections that
fail clearly when there is no database yet."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from shed_pipeline.core import duckdb_files
from shed_pipeline.core.lineage.schema import ensure_schema


class LineageError(Exception):
    pass


class LineageDatabase:
    """A lineage DuckDB file; the writer and the queries build on its connections."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 60.0):
        self.path = Path(path).expanduser()
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; one that writes has the tables created and migrated first."""
        if read_only and not self.path.exists():
            raise LineageError(f"{self.path}: no lineage database (run the pipeline first, or pass --db)")
        try:
            con = duckdb_files.connect(self.path, read_only=read_only, lock_timeout_s=self.lock_timeout_s)
        except duckdb_files.StoreLockedError as exc:
            raise LineageError(str(exc)) from exc
        try:
            if not read_only:
                ensure_schema(con)
            yield con
        finally:
            con.close()
