"""The lineage store resource, and which older lineage file a project adopts."""

import dagster as dg

from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.core.lineage.legacy import adopt_legacy_database
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
    """A project's lineage moved from where older versions kept it (`<home>/out/lineage.duckdb`) to
    `settings.lineage_path`, once; nothing when SHED_PIPELINE_LINEAGE names the database."""
    if settings.lineage is not None:
        return None
    return adopt_legacy_database(old=settings.legacy_lineage_path, new=settings.lineage_path)
