"""The Parquet reader (`.parquet`): each row is a record, its 0-based index the locator. Parquet
compresses its own columns, so a compressed Parquet file (`.parquet.gz`) is never read."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from shed_pipeline.core.sources.readers.decoding import read_bytes
from shed_pipeline.core.sources.units import SURROGATE, RawUnit, SourceError, SourceReport, one_line


def read_parquet(path: Path, name: str, compression: str | None, report: SourceReport | None) -> Iterator[RawUnit]:
    """The units of a Parquet file (`compression` is always None, `report` unused: the reader
    signature every format shares)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow opens a path as UTF-8: a name that is not (surrogates) is read from memory instead.
        table = pq.read_table(str(path) if not SURROGATE.search(str(path)) else pa.BufferReader(read_bytes(path, name)))
        items = table.to_pylist()
    except SourceError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SourceError(one_line(f"{name}: not a readable Parquet file ({exc})")) from exc
    for idx, item in enumerate(items):
        yield RawUnit(name, idx, item)
