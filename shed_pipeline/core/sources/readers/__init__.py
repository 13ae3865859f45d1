"""Reading source files into raw units: the suffix table that picks a file's reader, and reading
files one after another.

One module per format: `jsonl` (`.jsonl`, `.ndjson`), `json` (`.json`: an array of records, or an
object with one `data`/`examples`/`rows`/`records` list), `csv` (a header row) and `parquet`. The
text formats may be compressed as `.gz`, `.zst`, `.bz2` or `.xz` (`data.jsonl.gz`: the inner suffix
decides the format); `decoding` turns their bytes into text (UTF-8, or UTF-8/16/32 with a
byte-order mark). A file that cannot be read at all raises `SourceError`, one line that starts with
the file's name and says why.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, NamedTuple, Sequence

from shed_pipeline.core.sources.readers.csv import read_csv
from shed_pipeline.core.sources.readers.json import read_json
from shed_pipeline.core.sources.readers.jsonl import read_jsonl
from shed_pipeline.core.sources.readers.parquet import read_parquet
from shed_pipeline.core.sources.units import RawUnit, SourceError, SourceReport, display_name

# (local file, name rows and errors use, compression or None, report) -> the file's units.
Reader = Callable[[Path, str, str | None, SourceReport | None], Iterator[RawUnit]]


class Format(NamedTuple):
    name: str  # jsonl | json | csv | parquet
    read: Reader
    compressible: bool  # text formats may be compressed; Parquet compresses its own columns


_JSONL = Format("jsonl", read_jsonl, True)
# The suffix table: a file's (inner) suffix -> its format and reader. Its order is the one messages
# list the suffixes in.
SUFFIXES: dict[str, Format] = {
    ".jsonl": _JSONL,
    ".ndjson": _JSONL,
    ".json": Format("json", read_json, True),
    ".parquet": Format("parquet", read_parquet, False),
    ".csv": Format("csv", read_csv, True),
}
SUPPORTED_SUFFIXES = tuple(SUFFIXES)
_READERS = {f.name: f.read for f in SUFFIXES.values()}
# Compression of the text formats (Parquet compresses its own columns), by the file's last suffix.
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
ARCHIVES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz", ".7z", ".rar")
EXPECTED = (
    f"expected one of {', '.join(SUPPORTED_SUFFIXES)}, the text ones optionally compressed as .gz, .zst, .bz2 or .xz"
)


class SourceKind(NamedTuple):
    format: str  # jsonl | json | csv | parquet
    compression: str | None  # gzip | zstd | bz2 | xz


def _suffixes(name: str) -> tuple[str, str]:
    p = PurePosixPath(name.rstrip("/").rsplit("/", 1)[-1])
    return PurePosixPath(p.stem).suffix.lower(), p.suffix.lower()


def source_kind(name: str) -> SourceKind | None:
    """The format and compression a file name says (`data.jsonl.gz` -> jsonl, gzip); None for a file
    that is not read (another type, a compressed Parquet). Local folders and s3:// prefixes use this."""
    inner, suffix = _suffixes(name)
    compression = COMPRESSIONS.get(suffix)
    fmt = SUFFIXES.get(inner if compression else suffix)
    if fmt is None or (compression and not fmt.compressible):
        return None
    return SourceKind(fmt.name, compression)


def unsupported_reason(name: str) -> str:
    """Why a file `source_kind` does not read is not read."""
    inner, suffix = _suffixes(name)
    both = inner + suffix
    if suffix in COMPRESSIONS and inner == ".parquet":
        return f"compressed Parquet ({both}) is not read: decompress it (Parquet compresses its own columns)"
    if suffix in ARCHIVES or both in ARCHIVES:
        return f"an archive ({both if both in ARCHIVES else suffix}) is not read: extract its files"
    if suffix in COMPRESSIONS:
        return f"unsupported file type {both!r}"
    return f"unsupported file type {suffix!r}" if suffix else "unsupported file type (no suffix)"


def iter_units(path: Path, name: str | None = None, report: SourceReport | None = None) -> Iterator[RawUnit]:
    """Yield the raw units of one file. Raises SourceError if the file as a whole is unreadable.
    `name` is what rows and errors call the file (an s3:// location read from a local copy); its
    suffixes decide the format. `report` collects encodings and notes."""
    name = name or display_name(path)
    kind = source_kind(name)
    if kind is None:
        raise SourceError(f"{name}: {unsupported_reason(name)} ({EXPECTED})")
    yield from _READERS[kind.format](path, name, kind.compression, report)


def read_files(files: Sequence[tuple[Path, str]], report: SourceReport | None = None) -> list[RawUnit]:
    """The units of (local file, name to report) pairs, in order."""
    return list(iter_files(files, report))


def iter_files(files: Sequence[tuple[Path, str]], report: SourceReport | None = None) -> Iterator[RawUnit]:
    """read_files one unit at a time: each file's count reaches `report` when the file is done."""
    for path, name in files:
        count = 0
        for unit in iter_units(path, name, report):
            count += 1
            yield unit
        if report is not None:
            report.file_units[name] = count
            if count == 0:
                report.notes.append(f"{name}: holds no records")
