"""LineageStore: the lineage database with its writer, the pipeline's reads of earlier runs and the
user's queries."""

from __future__ import annotations

from shed_pipeline.core.lineage.history import LineageHistory
from shed_pipeline.core.lineage.queries import LineageQueries
from shed_pipeline.core.lineage.writer import LineageWriter


class LineageStore(LineageWriter, LineageHistory, LineageQueries):
    """What every run read, clustered, scored and selected (`record_asset`, `write_table`), what the
    next run reads back (`previous_snapshot`, `fingerprints_of`, `previous_proxies`), and why
    (`explain`, `why`, `diff`, `runs`)."""
