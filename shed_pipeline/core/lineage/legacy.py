"""Adopting a lineage database from where an older version kept it: moved, with DuckDB's write-ahead
log beside it, never over an existing one."""

from __future__ import annotations

import os
from pathlib import Path


def adopt_legacy_database(*, old: Path, new: Path) -> str | None:
    """Move the database at `old` (and its .wal) to `new`, once: nothing when `new` exists or `old`
    does not. The caller holds the project lock. Says what it did."""
    if new.exists() or not old.is_file():
        return None
    moves = [(old, new)]
    wal = old.with_name(old.name + ".wal")
    if wal.is_file():
        moves.append((wal, new.with_name(new.name + ".wal")))
    for src, dst in moves:
        os.link(src, dst)  # fails rather than overwrite
    for src, _ in moves:
        src.unlink()
    return f"moved this project's lineage from {old} to {new} (one lineage database per project)"
