"""What reading a source makes, before any validation: `RawUnit` (one record as read), `SourceReport`
(what reading noticed besides its units), `SourceError` (a file or folder that cannot be read at
all), and how files and text are written in rows, quarantine entries and errors (`display_name`,
`clean`, `one_line`).

A unit is a JSONL line, an element of a JSON array, a CSV row or a Parquet row. Every unit read ends
up either as a row or as a quarantine entry with a reason (`checks.validate_units`), so
`rows_in == rows_ok + rows_quarantined` for every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from shed_pipeline.core.terminal_text import printable

SURROGATE = re.compile("[\ud800-\udfff]")
# How surrogateescape (and decoding's bad-bytes handler) carries undecodable bytes.
BAD_BYTE = re.compile("[\udc80-\udcff]")


class SourceError(Exception):
    """A source (file, folder) that cannot be read at all. The message names it and says why."""


def unreadable(name: str, exc: OSError) -> SourceError:
    """The error for a file the operating system would not read."""
    return SourceError(f"{name}: cannot read ({exc.strerror or exc})")


def clean(text: str) -> str:
    """Text safe to store anywhere: lone surrogates (undecodable bytes, \\ud800 escapes) become U+FFFD."""
    return SURROGATE.sub("\ufffd", text)


def one_line(text: str) -> str:
    """`clean` text with every run of whitespace (newlines included) made one space."""
    return " ".join(clean(text).split())


def display_name(path: str | os.PathLike[str]) -> str:
    """What rows, quarantine entries and errors call a file: its path, with bytes that are not UTF-8
    (a name os.fsdecode could only carry as surrogates) and control characters written as \\xNN."""
    return printable(os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace"))


@dataclass
class RawUnit:
    """One record as read from a source, before validation."""

    source_file: str
    locator: int  # line number (1-based) for JSONL/CSV, element/row index (0-based) otherwise
    payload: Any  # a dict, or a str that failed to parse
    _: KW_ONLY
    parse_error: str | None = None
    invalid_utf8: bool = False
    problem: tuple[str, str] | None = None  # (reason, detail) found while reading: too_deep, invalid_unicode, ...
    encoding: str = "UTF-8"  # what invalid_utf8 means for this file
    note: str = ""  # added to a quarantine detail (a CSV row shorter than the header)

    def fingerprint(self) -> str:
        """Hash of the unit's content (not its position): used for sampling."""
        if isinstance(self.payload, str):
            text = self.payload
        else:
            text = json.dumps(self.payload, sort_keys=True, ensure_ascii=True, default=str)
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate outside U+DC80..U+DCFF (it will be quarantined)
            data = text.encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()


@dataclass
class SourceReport:
    """What reading a source noticed besides its units; filled by list_source_files and read_files."""

    file_units: dict[str, int] = field(default_factory=dict)  # units read from each file, in source order
    # Files not in plain UTF-8: 'utf-8-sig', 'utf-16-le', ...
    encodings: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) of folder entries not read
    # One line each, for the log: encodings, empty files, format guesses.
    notes: list[str] = field(default_factory=list)
