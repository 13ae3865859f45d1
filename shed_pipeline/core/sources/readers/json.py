"""The JSON reader (`.json`): one JSON value per file, an array of records or an object with one
`data`/`examples`/`rows`/`records` list; an element's 0-based index is its locator. A file that is
not valid JSON fails as a whole, except JSON Lines under a .json name, which is read line by line
(and a note says so).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.sources.readers.decoding import decode, decompress, read_bytes
from shed_pipeline.core.sources.readers.json_parsing import BLANK, Decoder, json_elements, records_of
from shed_pipeline.core.sources.readers.jsonl import jsonl_lines
from shed_pipeline.core.sources.units import RawUnit, SourceError, SourceReport, one_line


def read_json(path: Path, name: str, compression: str | None, report: SourceReport | None) -> Iterator[RawUnit]:
    """The units of a JSON file (`compression`: how it is compressed, None when it is not)."""
    data = read_bytes(path, name)
    if compression:
        data = decompress(data, compression, name)
    text, encoding = decode(data, name, "json", report)
    yield from json_units(text, name, encoding, report)


def json_units(text: str, name: str, encoding: str, report: SourceReport | None) -> Iterator[RawUnit]:
    """The units of a JSON file's text."""
    if not text.strip(BLANK):
        return
    dec = Decoder()
    try:
        payload = dec.decode(text)
    except json.JSONDecodeError as exc:
        first = next((line for line in text.split("\n") if line.strip(BLANK)), "")
        if exc.msg == "Extra data" and first.lstrip(BLANK).startswith("{"):
            try:
                json.loads(first)
            except (ValueError, RecursionError):
                pass
            else:  # JSON Lines in a file named .json: common; read it as what it is
                if report is not None:
                    report.notes.append(
                        f"{name}: holds JSON Lines (one record per line), not one JSON value; read line by line"
                    )
                yield from jsonl_lines(text.split("\n"), name, encoding)
                return
        raise SourceError(
            one_line(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
        ) from exc
    except RecursionError as exc:
        raise SourceError(f"{name}: not valid JSON (nested too deeply to parse)") from exc
    yield from json_elements(records_of(payload, name), text, dec, name, encoding)
