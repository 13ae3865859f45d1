"""Row-id hash shards: a fixed split of the rows into N parts, so that a per-row model step
(embedding) can run as N independent pieces (Dagster partitions: a backfill runs them as separate
runs, on Kubernetes one GPU pod each) whose union is the whole.

A row's shard comes from its id alone (the first 32 bits of the content hash, modulo N): it never
moves while N stays the same, adding rows touches only the shards they fall in, and shards are
balanced because the ids are uniform hashes.
"""

from __future__ import annotations

import polars as pl

MAX_SHARDS = 1024  # one partition per shard in Dagster's UI; beyond this a partition list is unusable


def check_shard_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"embedding shards must be a whole number from 1 to {MAX_SHARDS}, got {n!r}")
    return n


def parse_shard_count(text: str | None, where: str = "SHED_EMBEDDING_SHARDS") -> int:
    """The shard count a user wrote (1 when unset or empty), or a one-line error naming `where`."""
    if text is None or not str(text).strip():
        return 1
    try:
        return check_shard_count(int(str(text).strip()))
    except ValueError:
        raise ValueError(
            f"{where}={text!r}: give a whole number of embedding shards from 1 to {MAX_SHARDS} (1 = not sharded)"
        ) from None


def shard_keys(n: int) -> list[str]:
    """Partition keys of n shards, zero-padded so they sort as numbers: 00, 01, ..., 15."""
    width = len(str(check_shard_count(n) - 1))
    return [f"{i:0{width}d}" for i in range(n)]


def shard_of(row_ids: pl.Series | list[str], n: int) -> pl.Series:
    """Each row id's shard index (0 .. n-1). Row ids are hex content hashes; anything else is an error."""
    ids = row_ids if isinstance(row_ids, pl.Series) else pl.Series("row_id", row_ids, dtype=pl.Utf8)
    check_shard_count(n)
    try:
        head = ids.str.slice(0, 8).str.to_integer(base=16, strict=True)
    except pl.exceptions.ComputeError:
        bad = ids.filter(~ids.str.contains(r"^[0-9a-fA-F]{8}")).head(1).to_list()
        raise ValueError(
            f"row id {bad[0] if bad else '?'!r} is not a hex content hash: rows cannot be sharded"
        ) from None
    if head.null_count():
        raise ValueError("a row without an id cannot be sharded")
    return (head % n).cast(pl.Int64).rename("shard")


def in_shard(shard: int, n: int, column: str = "row_id") -> pl.Expr:
    """A filter for the rows of one shard, for lazy scans (the rule of `shard_of`)."""
    check_shard_count(n)
    return pl.col(column).str.slice(0, 8).str.to_integer(base=16, strict=True) % n == shard


def rows_in_shards(frame: pl.DataFrame, keys: list[str], n: int) -> pl.DataFrame:
    """The rows of `frame` (with a row_id column) in the shards named by `keys`, in frame order."""
    wanted = {shard_keys(n).index(k) for k in keys}
    return frame.filter(shard_of(frame["row_id"], n).is_in(sorted(wanted)))


def split_by_shard(frame: pl.DataFrame, keys: list[str], n: int) -> dict[str, pl.DataFrame]:
    """`frame`'s rows by shard key, each shard's rows in frame order; every key present (empty when
    no row falls there), rows of other shards an error (they would be lost)."""
    names = shard_keys(n)
    index = shard_of(frame["row_id"], n)
    wanted = {names.index(k) for k in keys}
    stray = set(index.unique().to_list()) - wanted
    if stray:
        raise ValueError(f"rows of shards {sorted(names[i] for i in stray)} given to shards {sorted(keys)}")
    return {k: frame.filter(index == names.index(k)) for k in keys}
