"""LineageStore: the lineage database with its writer and its queries."""

from __future__ import annotations

from shed_pipeline.core.lineage.queries import LineageQueries
from shed_pipeline.core.lineage.writer import LineageWriter


class LineageStore(LineageWriter, LineageQueries):
    """What every run read, clustered, scored and selected (`record_asset`, `write_table`), and why
    (`explain`, `why`, `diff`, `runs`, ...)."""
