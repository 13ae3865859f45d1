"""Sources: reading instruction data into rows with stable ids, and quarantining what cannot be used.

Where things are:
  load.py        load_source: a source name to validated, split rows (the whole of raw_dataset);
                 source_label, ROW_SCHEMA
  listing.py     which files a local source is; why a folder entry is not read (skipped_lines)
  readers/       one reader per format (jsonl, json, csv, parquet), the suffix table that picks one,
                 decoding (compression, text encodings) and the JSON parsing both JSON readers share
  units.py       RawUnit (a record as read), SourceReport, SourceError
  checks.py      validation: the checks that keep a unit or quarantine it, and validate_units, which
                 runs them; reasons.py, the reasons' stable strings
  fields.py      a record's instruction, input and output: named fields or a chat's turns
  quarantine.py  the quarantine entries, ReadResult (what a read kept, counts that balance) and their lines
  rows.py        Row and row_id_for (a content hash)
  sampling.py    the deterministic (stratified) sample; splits.py, pool/validation/test by row id
  digests.py     file and source fingerprints
  s3.py          s3:// sources: listing, the local mirror, the sensor's listing scan
  scan.py        the sensor's cheap scan of a local source
  row_diff.py    what changed in a source's rows between two runs
  packaged/      the sources extracted from the bigbench archive (natural_instructions, bigbench_chat)

No Dagster here; `shed_pipeline.assets.ingest` and `shed_pipeline.sensors` use these names.
"""

from shed_pipeline.core.sources.digests import combine_digests, file_digest, source_fingerprint
from shed_pipeline.core.sources.fields import FieldMapping
from shed_pipeline.core.sources.listing import skipped_lines
from shed_pipeline.core.sources.load import ROW_SCHEMA, LoadedSource, load_source, source_label
from shed_pipeline.core.sources.packaged import BIGBENCH_CHAT, DEFAULT_ROWS, NATURAL_INSTRUCTIONS, PACKAGED_SOURCES
from shed_pipeline.core.sources.packaged.bigbench_chat import bigbench_chat_parquet
from shed_pipeline.core.sources.packaged.natural_instructions import natural_instructions_parquet
from shed_pipeline.core.sources.row_diff import RowDiff, diff_rows
from shed_pipeline.core.sources.rows import row_id_for
from shed_pipeline.core.sources.s3 import scan_s3_source
from shed_pipeline.core.sources.scan import SourceScan, scan_source
from shed_pipeline.core.sources.units import SourceError

__all__ = [
    "BIGBENCH_CHAT",
    "DEFAULT_ROWS",
    "NATURAL_INSTRUCTIONS",
    "PACKAGED_SOURCES",
    "ROW_SCHEMA",
    "FieldMapping",
    "LoadedSource",
    "RowDiff",
    "SourceError",
    "SourceScan",
    "bigbench_chat_parquet",
    "combine_digests",
    "diff_rows",
    "file_digest",
    "load_source",
    "natural_instructions_parquet",
    "row_id_for",
    "scan_s3_source",
    "scan_source",
    "skipped_lines",
    "source_fingerprint",
    "source_label",
]
