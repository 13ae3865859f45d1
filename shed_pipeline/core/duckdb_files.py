"""Opening DuckDB files the way every store here needs: one writer at a time across processes.

DuckDB allows one read-write process per file; a second writer gets a lock error at connect time.
Writers here wait for the lock (up to a timeout) rather than fail the step.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb


class StoreLockedError(Exception):
    pass


def connect(path: str | Path, read_only: bool = False, lock_timeout_s: float = 60.0) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise StoreLockedError(f"{path}: cannot open ({exc})") from exc
            time.sleep(0.2)


def arrow_table(relation):
    """A relation as a pyarrow Table: duckdb 2.0 names it to_arrow_table, 1.x arrow."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()
