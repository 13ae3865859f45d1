"""The lineage store resource, and the move of an older project's lineage file into place."""

import os

import dagster as dg

from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.settings import Settings


class LineageResource(dg.ConfigurableResource):
    """The lineage DuckDB file. DuckDB allows one writing process: writers take the file lock with
    retry (`duckdb_files.connect`), and write in short transactions, so concurrent runs wait for each
    other's writes. Steps that use the compute device (embeddings, clusters, proxy_shapley_scores,
    evaluation_metrics) run in the `gpu` pool instead, so one GPU serves one step at a time; the
    others (raw_dataset, curated_subset) in the `duckdb` pool."""

    path: str

    def store(self) -> LineageStore:
        return LineageStore(self.path)


def adopt_legacy_lineage(settings: Settings) -> str | None:
    """Move a project's lineage from where older versions kept it (`<home>/out/lineage.duckdb`, and
    DuckDB's write-ahead log beside it) to `default_lineage_path`, once; the caller holds the project
    lock. Never overwrites: a project that already has its database keeps it. Says what it did."""
    if settings.lineage is not None:
        return None
    new, old = settings.lineage_path, settings.legacy_lineage_path
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
