"""The JSON Lines reader (`.jsonl`, `.ndjson`): one record per line, its 1-based line number as the
locator; blank lines are not records. A line that does not parse is a unit with a parse error
(quarantined as malformed_json), never the end of the file.

A file whose first record is a JSON array, or an object spread over many lines (a pretty-printed
data wrapper), is read as JSON (and a note says so). Large uncompressed UTF-8 files are read from
disk a line at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from shed_pipeline.core.sources.readers.decoding import (
    BAD_BYTES,
    decompress,
    file_ends,
    read_bytes,
    text_encoding,
    utf8_file_lines,
    utf8_lines,
)
from shed_pipeline.core.sources.readers.json_parsing import (
    BLANK,
    MAX_DEPTH,
    SURROGATE_ESCAPE,
    Decoder,
    inspect,
    json_elements,
    parses,
    records_of,
)
from shed_pipeline.core.sources.reasons import TOO_DEEP
from shed_pipeline.core.sources.units import BAD_BYTE, RawUnit, SourceError, SourceReport, unreadable

# Files larger than this are streamed (JSON Lines without compression): their bytes are never held whole.
STREAM_MIN_BYTES = 1 << 20


def read_jsonl(path: Path, name: str, compression: str | None, report: SourceReport | None) -> Iterator[RawUnit]:
    """The units of a JSON Lines file (`compression`: how it is compressed, None when it is not)."""
    if not compression:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise unreadable(name, exc) from exc
        if size > STREAM_MIN_BYTES:
            yield from jsonl_units(file_ends(path, name, size), name, report, path=path)
            return
    data = read_bytes(path, name)
    if compression:
        data = decompress(data, compression, name)
    yield from jsonl_units(data, name, report)


def jsonl_units(data: bytes, name: str, report: SourceReport | None, path: Path | None = None) -> Iterator[RawUnit]:
    """`data`: the file's bytes; or, with `path` (an uncompressed file), only its first and last
    bytes, enough to tell its encoding, and its lines are read from the file one at a time."""
    codec, skip = text_encoding(data, name, "jsonl", report)
    if path is not None and codec != "utf-8":
        data, path = read_bytes(path, name), None  # UTF-16/32: decoded whole, as before
    text = None if codec == "utf-8" else data[skip:].decode(codec, BAD_BYTES)
    encoding = codec.upper()

    def lines() -> Iterator[str]:
        return utf8_lines(data, skip) if path is None else utf8_file_lines(path, skip, name)

    first = next((line for line in (text.split("\n") if text is not None else lines()) if line.strip(BLANK)), "")
    head = first.lstrip(BLANK)[:1]
    if head == "[" or (head == "{" and not parses(first)):
        # A JSON array, or an object spread over many lines (a data wrapper, pretty-printed), in a
        # file named .jsonl: read it as JSON. A record on one line is a JSON Lines record, whatever
        # its fields are called.
        if path is not None:
            data, path = read_bytes(path, name), None
        text = text if text is not None else data[skip:].decode("utf-8", "surrogateescape")
        dec = Decoder()
        try:
            whole = dec.decode(text)
        except (ValueError, RecursionError):
            whole = None
        try:
            records = records_of(whole, name) if isinstance(whole, (list, dict)) else None
        except SourceError:
            records = None
        if records is not None and (isinstance(whole, dict) or any(isinstance(r, dict) for r in records)):
            if report is not None:
                what = "array" if isinstance(whole, list) else "object"
                report.notes.append(f"{name}: holds one JSON {what}, not JSON Lines; read as JSON")
            yield from json_elements(records, text, dec, name, encoding)
            return
    yield from jsonl_lines(text.split("\n") if text is not None else lines(), name, encoding)


def jsonl_lines(lines: Iterable[str], name: str, encoding: str) -> Iterator[RawUnit]:
    """The units of JSON Lines text, one line at a time."""
    dec = Decoder()
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("\ufeff"):
            line = line[1:]  # a byte-order mark inside: files concatenated with cat
        if not line.strip(BLANK):
            continue  # blank lines are not records
        line = line.rstrip("\r")
        # isascii: a C scan, far cheaper than the regex.
        bad = not line.isascii() and BAD_BYTE.search(line) is not None
        dec.dups = 0
        try:
            payload = dec.decode(line)
        except json.JSONDecodeError as exc:
            yield RawUnit(
                name, lineno, line, parse_error=f"{exc.msg} at column {exc.colno}", invalid_utf8=bad, encoding=encoding
            )
            continue
        except RecursionError:
            yield RawUnit(
                name,
                lineno,
                line,
                invalid_utf8=bad,
                problem=(TOO_DEEP, f"nested more than {MAX_DEPTH} levels deep"),
                encoding=encoding,
            )
            continue
        unit = RawUnit(name, lineno, payload, invalid_utf8=bad, encoding=encoding)
        # Cheap tests first: most lines have no escape at all and are shorter than MAX_DEPTH brackets.
        if (
            dec.dups
            or ("\\u" in line and SURROGATE_ESCAPE.search(line))
            or (len(line) > MAX_DEPTH and line.count("[") + line.count("{") > MAX_DEPTH)
        ):
            inspect(unit, bad, line)
        yield unit
