"""From a file's bytes to text, shared by the text readers (JSON, JSON Lines, CSV): decompression
(.gz, .zst, .bz2, .xz), telling the encoding (UTF-8; UTF-8, UTF-16 or UTF-32 with a byte-order mark,
reported in `SourceReport.encodings`), and failing in one line on binary content under a text name
or UTF-16/32 text without a mark.

Undecodable bytes are never an error here: they become U+DC80..U+DCFF (as surrogateescape does), so
the records holding them are quarantined as invalid_utf8.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import re
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from shed_pipeline.core.sources.units import SourceError, SourceReport, display_name, one_line, unreadable

BAD_BYTES = "shed_pipeline.bad_bytes"  # the codecs error handler registered below


def _bad_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    # Like surrogateescape, for any decoder: each undecodable byte becomes one char in U+DC80..U+DCFF.
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC80 | (b & 0x7F)) for b in bad), exc.end


codecs.register_error(BAD_BYTES, _bad_bytes)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16-LE, whose mark it starts with
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Binary content in a file named as text: (magic bytes, what it is, what to do).
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data", "name it with a .gz suffix"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "name it with a .zst suffix"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "name it with an .xz suffix"),
    (b"PK\x03\x04", "a zip archive", "extract its files"),
    (b"PAR1", "Parquet data", "name it with a .parquet suffix"),
)
_BZ2_MAGIC = re.compile(rb"BZh[1-9]1AY&SY")


def read_bytes(path: Path, name: str | None = None) -> bytes:
    """A file's bytes; an unreadable file is a SourceError naming it (`name`, else its path)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise unreadable(name or display_name(path), exc) from exc


def file_ends(path: Path, name: str, size: int, length: int = 4096) -> bytes:
    """A file's first `length` bytes and its last four: what telling its encoding and kind looks at."""
    try:
        with path.open("rb") as fh:
            head = fh.read(length)
            fh.seek(max(0, size - 4))
            return head + fh.read(4)
    except OSError as exc:
        raise unreadable(name, exc) from exc


def decompress(data: bytes, compression: str, name: str) -> bytes:
    """`data` decompressed (gzip | zstd | bz2 | xz); data that is not is a SourceError naming the file."""
    try:
        if compression == "gzip":
            return gzip.decompress(data)
        if compression == "bz2":
            return bz2.decompress(data)
        if compression == "xz":
            return lzma.decompress(data)
        import pyarrow as pa  # zstd: not in the standard library before Python 3.14

        return pa.CompressedInputStream(pa.BufferReader(data), "zstd").read() if data else b""
    # pyarrow's errors are OSError/ValueError.
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
        raise SourceError(
            f"{name}: not readable as {compression}-compressed data ({one_line(str(exc)) or type(exc).__name__})"
        ) from exc


def _looks_wide(data: bytes) -> str | None:
    """UTF-16/32 text without a byte-order mark: NUL bytes in the pattern its ASCII characters make."""
    sample = data[:4096]
    if b"\x00" not in sample:
        return None

    def zeros(start: int, step: int) -> float:
        part = sample[start::step]
        return part.count(0) / len(part) if part else 0.0

    if len(sample) >= 8:
        if zeros(2, 4) > 0.9 and zeros(3, 4) > 0.9 and zeros(0, 4) < 0.1:
            return "UTF-32-LE"
        if zeros(0, 4) > 0.9 and zeros(1, 4) > 0.9 and zeros(3, 4) < 0.1:
            return "UTF-32-BE"
    if len(sample) >= 4:
        if zeros(1, 2) > 0.5 and zeros(0, 2) < 0.1:
            return "UTF-16-LE"
        if zeros(0, 2) > 0.5 and zeros(1, 2) < 0.1:
            return "UTF-16-BE"
    return None


def text_encoding(data: bytes, name: str, fmt: str, report: SourceReport | None) -> tuple[str, int]:
    """(codec, length of its byte-order mark) of a text file: `utf-8` unless a mark says otherwise.
    Binary content under a text name, and UTF-16/32 without a mark, fail in one line saying so."""
    for magic, what, todo in _MAGIC:
        # Parquet's mark is at both ends: a CSV header may start with the same four letters.
        if data.startswith(magic) and (magic != b"PAR1" or data.endswith(magic)):
            raise SourceError(f"{name}: holds {what}, not {fmt.upper()} text ({todo})")
    if _BZ2_MAGIC.match(data):
        raise SourceError(f"{name}: holds bzip2-compressed data, not {fmt.upper()} text (name it with a .bz2 suffix)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if report is not None:
                report.encodings[name] = encoding
                report.notes.append(
                    f"{name}: "
                    + (
                        "UTF-8 text with a byte-order mark (the mark is ignored)"
                        if encoding == "utf-8-sig"
                        else f"{encoding.upper()} text with a byte-order mark, decoded as such"
                    )
                )
            return ("utf-8" if encoding == "utf-8-sig" else encoding), len(bom)
    wide = _looks_wide(data)
    if wide:
        raise SourceError(f"{name}: looks like {wide} text without a byte-order mark; save it as UTF-8")
    return "utf-8", 0


def decode(data: bytes, name: str, fmt: str, report: SourceReport | None) -> tuple[str, str]:
    """The file's text and the name of its encoding (`text_encoding`)."""
    codec, skip = text_encoding(data, name, fmt, report)
    body = data[skip:] if skip else data
    if codec == "utf-8":
        return body.decode("utf-8", "surrogateescape"), "UTF-8"
    return body.decode(codec, BAD_BYTES), codec.upper()


def _decoded_lines(fh: BinaryIO, skip: int) -> Iterator[str]:
    """The lines of UTF-8 bytes from `skip` on, each decoded when it is reached: a large JSONL file
    is never held as one big string."""
    fh.seek(skip)
    for raw in fh:
        yield (raw[:-1] if raw.endswith(b"\n") else raw).decode("utf-8", "surrogateescape")


def utf8_lines(data: bytes, skip: int) -> Iterator[str]:
    """The lines of UTF-8 bytes from `skip` on, each decoded when it is reached."""
    return _decoded_lines(io.BytesIO(data), skip)


def utf8_file_lines(path: Path, skip: int, name: str) -> Iterator[str]:
    """The lines of a UTF-8 file, read and decoded one at a time."""
    try:
        with path.open("rb") as fh:
            yield from _decoded_lines(fh, skip)
    except OSError as exc:
        raise unreadable(name, exc) from exc
