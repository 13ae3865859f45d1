"""The embedding cache: vectors of text segments keyed by (model id, text hash), kept in DuckDB and
written in buffered batches."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Sequence

import duckdb
import numpy as np

from shed_pipeline.core.duckdb_files import arrow_table, connect

GET_ROWS = 65_536  # keys per cache query: DuckDB's join and sort stay small


# Writes of many small chunks are gathered: each DuckDB transaction on its own connection ends in a
# checkpoint that costs about as much for 512 vectors as for 65,536 (about a second on 2 cores), far
# more than a fast device takes to encode them. An interrupted run loses at most FLUSH_SECONDS of work.
FLUSH_ROWS = 65_536


FLUSH_SECONDS = 30.0


class EmbeddingCache:
    """DuckDB tables of vectors: per text segment (model_id, text_hash) and per row (model_id, row_id).

    Segments are what the model encodes (each distinct text once); a row's vector is composed from
    its segments. Each call opens the file for itself (one writer at a time: DuckDB's rule), and
    `buffered()` gathers small writes into few transactions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            for table, key in (("segments", "text_hash"), ("embeddings", "row_id")):
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (model_id VARCHAR NOT NULL, {key} VARCHAR NOT NULL, "
                    f"vector FLOAT[] NOT NULL, PRIMARY KEY (model_id, {key}))"
                )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return connect(self.path)  # waits for another writer's lock instead of failing

    @staticmethod
    def _table(kind: str) -> tuple[str, str]:
        if kind == "rows":
            return "embeddings", "row_id"
        if kind == "segments":
            return "segments", "text_hash"
        raise ValueError(kind)

    def buffered(
        self,
        model_id: str,
        kind: str = "rows",
        on_flush: Callable[[int], None] | None = None,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> BufferedWrites:
        return BufferedWrites(self, model_id, kind, on_flush=on_flush, flush_seconds=flush_seconds)

    def missing(self, model_id: str, keys: Sequence[str], kind: str = "rows") -> list[str]:
        if not keys:
            return []
        table, col = self._table(kind)
        with self._connect() as con:
            con.execute("CREATE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS k", [list(keys)])
            have = {
                r
                for (r,) in con.execute(
                    f"SELECT w.k FROM wanted w JOIN {table} e ON e.{col} = w.k AND e.model_id = ?", [model_id]
                ).fetchall()
            }
        return [k for k in keys if k not in have]

    def put(self, model_id: str, keys: Sequence[str], vectors: np.ndarray, kind: str = "rows") -> None:
        import pyarrow as pa

        table, _ = self._table(kind)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        arrow = pa.table(
            {
                "model_id": pa.array([model_id] * len(keys), pa.string()),
                "k": pa.array(list(keys), pa.string()),
                "vector": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, vecs.size + 1, max(1, vecs.shape[1]), dtype=np.int32)),
                    pa.array(vecs.reshape(-1)),
                ),
            }
        )
        with self._connect() as con:
            con.register("incoming", arrow)
            con.execute(f"INSERT OR IGNORE INTO {table} SELECT model_id, k, vector FROM incoming")

    def get(self, model_id: str, keys: Sequence[str], kind: str = "rows") -> np.ndarray:
        """Vectors in the order of keys (one float32 array, filled GET_ROWS keys at a time); KeyError
        if any is absent."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        table, col = self._table(kind)
        out: np.ndarray | None = None
        missing = 0
        with self._connect() as con:
            for start in range(0, len(keys), GET_ROWS):
                part = list(keys[start : start + GET_ROWS])
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS k, "
                    "generate_subscripts(?::VARCHAR[], 1) AS pos",
                    [part, part],
                )
                res = arrow_table(
                    con.sql(
                        f"SELECT w.pos, e.vector FROM wanted w JOIN {table} e ON e.{col} = w.k AND e.model_id = ? "
                        "ORDER BY w.pos",
                        params=[model_id],
                    )
                )
                if res.num_rows != len(part):
                    missing += len(part) - res.num_rows
                    continue
                flat = np.asarray(
                    res.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float32
                ).reshape(len(part), -1)
                if out is None:
                    out = np.empty((len(keys), flat.shape[1]), dtype=np.float32)
                out[start : start + len(part)] = flat
        if missing:
            raise KeyError(f"{missing} of {len(keys)} {kind} have no cached embedding for {model_id}")
        assert out is not None
        return out

    def count(self, model_id: str, kind: str = "rows") -> int:
        table, _ = self._table(kind)
        with self._connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {table} WHERE model_id = ?", [model_id]).fetchone()[0])


class BufferedWrites:
    """Vectors for one (model, kind) held until FLUSH_ROWS of them or FLUSH_SECONDS have gathered,
    then written in one transaction; the rest at the end of the `with` block, also when it fails
    (what was computed stays computed). `on_flush(n)` hears how many were written."""

    def __init__(
        self,
        cache: EmbeddingCache,
        model_id: str,
        kind: str,
        *,
        on_flush: Callable[[int], None] | None = None,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
    ):
        self.cache, self.model_id, self.kind, self.on_flush = cache, model_id, kind, on_flush
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._keys: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._since = time.monotonic()

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self._keys.extend(keys)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(self._keys) >= self.flush_rows or time.monotonic() - self._since >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._keys:
            n = len(self._keys)
            self.cache.put(self.model_id, self._keys, np.concatenate(self._vectors), kind=self.kind)
            self._keys, self._vectors = [], []
            if self.on_flush is not None:
                self.on_flush(n)
        self._since = time.monotonic()

    def __enter__(self) -> "BufferedWrites":
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
