"""The CSV reader (`.csv`): a header row names the fields, each later row is a record and its first
line number (1-based) its locator. A row with more cells than the header, and the row a never-closed
quoted cell swallows the rest of the file into, are malformed_csv; a row with fewer cells keeps a
note that quarantine details mention.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.sources.readers.decoding import decode, decompress, read_bytes
from shed_pipeline.core.sources.reasons import MALFORMED_CSV
from shed_pipeline.core.sources.units import BAD_BYTE, RawUnit, SourceError, SourceReport, clean, one_line

# csv's default field limit (131,072 characters) would fail a whole file on one long cell; max_chars
# quarantines long rows instead. sys.maxsize overflows a C long on some platforms: halve until accepted.
_limit = sys.maxsize
while True:
    try:
        csv.field_size_limit(_limit)
        break
    except OverflowError:
        _limit //= 2


def read_csv(path: Path, name: str, compression: str | None, report: SourceReport | None) -> Iterator[RawUnit]:
    """The units of a CSV file (`compression`: how it is compressed, None when it is not)."""
    data = read_bytes(path, name)
    if compression:
        data = decompress(data, compression, name)
    text, encoding = decode(data, name, "csv", report)
    yield from csv_units(text, name, encoding)


def csv_units(text: str, name: str, encoding: str) -> Iterator[RawUnit]:
    """The units of a CSV file's text."""
    units: list[RawUnit] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if header is None:
            return
        repeated = [h for i, h in enumerate(header) if h and h in header[:i]]
        if repeated:
            raise SourceError(
                clean(
                    f"{name}: the CSV header names column {repeated[0]!r} more than once "
                    "(one would hide the other); rename one"
                )
            )
        start = 0
        while True:
            first_line = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            start = first_line  # of the last record read
            bad = any(isinstance(v, str) and BAD_BYTE.search(v) for kv in record.items() for v in kv)
            if None in record:  # more cells than header columns
                extra = record.pop(None)
                bad = bad or any(BAD_BYTE.search(v) for v in extra)
                units.append(
                    RawUnit(
                        name,
                        reader.line_num,
                        json.dumps(record, default=str),
                        invalid_utf8=bad,
                        problem=(MALFORMED_CSV, f"{len(extra)} cell{'s' if len(extra) != 1 else ''} beyond the header"),
                        encoding=encoding,
                    )
                )
                continue
            unit = RawUnit(name, reader.line_num, dict(record), invalid_utf8=bad, encoding=encoding)
            cells = sum(v is not None for v in record.values())
            if cells < len(header):
                unit.note = f"the CSV row has {cells} of the header's {len(header)} cells"
            units.append(unit)
    except csv.Error as exc:
        raise SourceError(one_line(f"{name}: not valid CSV ({exc})")) from exc
    if units and text.count('"') % 2:
        # An odd number of quotes: a quoted cell may never be closed, which makes the rest of the file
        # one last row. csv only says so in strict mode: re-read that row's lines strictly.
        lines = io.StringIO(text, newline="").readlines()
        try:
            list(csv.reader(io.StringIO("".join(lines[start - 1 :]), newline=""), strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                last = units[-1]
                last.problem = (
                    MALFORMED_CSV,
                    f"a quoted cell opened on line {start} is never closed: "
                    f"lines {start}-{last.locator} were read as one row",
                )
    yield from units
