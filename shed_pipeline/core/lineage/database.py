"""The lineage database file and its connections: one writer at a time (DuckDB's rule across
processes, so writers wait while another process holds the lock), and read-only connections that
fail clearly when there is no database yet; reading rows by column name."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import duckdb

from shed_pipeline.core import duckdb_files
from shed_pipeline.core.lineage.schema import ensure_schema

R = TypeVar("R")


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


def one_record(con, record: type[R], sql: str, params: list) -> R | None:
    """The first row of `sql` as a `record`, its fields filled by column name; None without a row."""
    cur = con.execute(sql, params)
    row = cur.fetchone()
    if row is None:
        return None
    return record(**dict(zip([d[0] for d in cur.description], row, strict=True)))


def scalar(con, sql: str, params: list | None = None) -> Any:
    """The first column of the first row of `sql`; None without a row."""
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def dict_rows(cur) -> list[dict]:
    """Every row of a cursor as a dict by column name."""
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]
