"""Lineage in DuckDB: what every run read, clustered, scored and selected, and why.

Append-only across runs: a run writes only records tagged with its own run id, and a re-executed
step of the same run replaces only that run's records of that step. One writer at a time
(DuckDB's rule across processes): writers retry while another process holds the lock.
All SQL is parameterised.

- `schema`: the tables' DDL and the migrations of older databases
- `database`: the database file and its connections (LineageError)
- `writer`: record_asset and write_table
- `history`: what the pipeline reads back from earlier runs (previous snapshot, fingerprints, proxies)
- `queries`: the user's questions: runs, explain / why, diff
- `explanations`: their answers, as small frozen dataclasses
- `legacy`: adopting the database an older version kept elsewhere
- `store`: LineageStore, all of the above on one database
"""

from shed_pipeline.core.lineage.database import LineageError
from shed_pipeline.core.lineage.explanations import (
    AddedRow,
    ClusterStanding,
    NearDuplicate,
    Quarantine,
    Removal,
    RemovedRow,
    RowExplanation,
    RunDiff,
    RunRecord,
    SourcePlace,
)
from shed_pipeline.core.lineage.store import LineageStore

__all__ = [
    "AddedRow",
    "ClusterStanding",
    "LineageError",
    "LineageStore",
    "NearDuplicate",
    "Quarantine",
    "Removal",
    "RemovedRow",
    "RowExplanation",
    "RunDiff",
    "RunRecord",
    "SourcePlace",
]
