"""Utility evaluations cached in DuckDB, across runs.

An evaluation U(S) is keyed by everything that determines it:
- the *utility key*: the utility's name and settings and a fingerprint of the data it scores
  against (the validation rows: ids, vectors, references), see `utility_key`;
- the *coalition key*: a hash of the sorted identities of S's players (cluster proxies: row id and a
  digest of the proxy's vector). Keying by identities, not by positions, means a coalition recurs
  across runs whenever the same proxies meet again, however clusters were renumbered or retired in
  between.

New values are written at least every `flush_seconds` (1 s) during estimation, and whatever is left on
exit (also when the estimation fails), so a re-run answers every finished evaluation from the cache;
a process killed outright loses at most the last second of evaluations.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from shed_pipeline.core import duckdb_files

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS utility_evaluations (
        utility_key VARCHAR NOT NULL, coalition_key VARCHAR NOT NULL, value DOUBLE NOT NULL,
        evaluated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (utility_key, coalition_key))""",
    """CREATE TABLE IF NOT EXISTS utilities (
        utility_key VARCHAR PRIMARY KEY, description JSON NOT NULL, first_used TIMESTAMPTZ NOT NULL)""",
]


def utility_key(name: str, settings: dict[str, Any], data_fingerprint: str) -> str:
    payload = json.dumps({"utility": name, "settings": settings, "data": data_fingerprint}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def fingerprint_arrays(*parts: Any) -> str:
    """A content hash of arrays and string lists (for the data a utility scores against)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            for s in p:
                b = str(s).encode("utf-8", "surrogateescape")
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        h.update(b"|")
    return h.hexdigest()[:32]


class EvaluationStore:
    """The DuckDB file of cached evaluations. DuckDB allows one writing process at a time, so no
    connection is held during an estimation (which can last hours with a language-model utility):
    known values are read at the start, new ones written in short transactions, and two runs that
    score at the same time only wait for each other's writes."""

    def __init__(
        self, path: str | Path, flush_every: int = 256, flush_seconds: float = 1.0, lock_timeout_s: float = 120.0
    ):
        self.path = Path(path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def session(self, key: str, description: dict[str, Any]) -> Iterator["StoreSession"]:
        with duckdb_files.connect(self.path, lock_timeout_s=self.lock_timeout_s) as con:
            for stmt in SCHEMA:
                con.execute(stmt)
            con.execute(
                "INSERT INTO utilities VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [key, json.dumps(description, sort_keys=True, default=str), datetime.now(timezone.utc)],
            )
            known = dict(
                con.execute(
                    "SELECT coalition_key, value FROM utility_evaluations WHERE utility_key = ?", [key]
                ).fetchall()
            )
        session = StoreSession(self, key, known)
        try:
            yield session
        finally:
            session.flush()  # keep finished work, also when the estimation failed

    def count(self, key: str | None = None) -> int:
        if not self.path.exists():
            return 0
        with duckdb_files.connect(self.path, read_only=True) as con:
            if not con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'utility_evaluations'"
            ).fetchone()[0]:
                return 0
            if key is None:
                return int(con.execute("SELECT count(*) FROM utility_evaluations").fetchone()[0])
            return int(
                con.execute("SELECT count(*) FROM utility_evaluations WHERE utility_key = ?", [key]).fetchone()[0]
            )


class StoreSession:
    def __init__(self, store: EvaluationStore, key: str, known: dict[str, float]):
        self._store = store
        self.key = key
        self.known = known
        self._pending: list[tuple[str, float]] = []
        self._last_flush = time.monotonic()
        self.written = 0

    def get(self, coalition: str) -> float | None:
        return self.known.get(coalition)

    def put(self, coalition: str, value: float) -> None:
        self.known[coalition] = value
        self._pending.append((coalition, value))
        if (
            len(self._pending) >= self._store.flush_every
            or time.monotonic() - self._last_flush > self._store.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        import pyarrow as pa

        now = datetime.now(timezone.utc)
        batch = pa.table(
            {
                "utility_key": pa.array([self.key] * len(self._pending), pa.string()),
                "coalition_key": pa.array([c for c, _ in self._pending], pa.string()),
                "value": pa.array([v for _, v in self._pending], pa.float64()),
                "evaluated_at": pa.array([now] * len(self._pending), pa.timestamp("us", tz="UTC")),
            }
        )
        with duckdb_files.connect(self._store.path, lock_timeout_s=self._store.lock_timeout_s) as con:
            con.register("incoming", batch)
            con.execute("INSERT INTO utility_evaluations SELECT * FROM incoming ON CONFLICT DO NOTHING")
            con.unregister("incoming")
        self.written += len(self._pending)
        self._pending.clear()
        self._last_flush = time.monotonic()


def coalition_key(player_ids: Sequence[str], mask: np.ndarray) -> str:
    """Hash of the sorted identities of the coalition's players."""
    ids = sorted(player_ids[i] for i in np.flatnonzero(mask))
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


def share_of(coalition: str, shares: int) -> int:
    """The share (0 .. shares-1) that evaluates a coalition, from its key (a uniform hash): shares
    balance, and a coalition asked for twice, or by two workers, belongs to one of them."""
    return int(coalition[:8], 16) % shares
