"""Reading instruction data into rows with stable ids, and quarantining what cannot be used.

Every unit read from a source (a JSONL line, an element of a JSON array, a Parquet or CSV row) ends
up either as a row or as a quarantine entry with a reason, so `rows_in == rows_ok + rows_quarantined`
for every file. A file that cannot be read at all raises `SourceError`, one line that starts with the
file's name and says why. Nothing is dropped without a word: entries of a source folder that are not
read (other types, hidden, not regular files, broken links) are listed in `SourceReport.skipped`.

Files: `.jsonl`/`.ndjson`, `.json` (an array of records, or an object with one `data`/`examples`/
`rows`/`records` list), `.csv` (a header row) and `.parquet`; the text formats may be compressed as
`.gz`, `.zst`, `.bz2` or `.xz` (`data.jsonl.gz`: the inner suffix decides the format). Text is UTF-8;
a byte-order mark is honoured (UTF-8, UTF-16 and UTF-32, little or big endian) and reported in
`SourceReport.encodings`; UTF-16/32 text without one fails with a message saying so. In a folder,
any entry whose path below the folder has a component starting with "." is hidden and not read.

Chat records (`FieldMapping.messages`): the last assistant turn is the output; the system, user and
assistant turns before it are the prompt. `instruction` is those turns flattened ("role: content"
joined by blank lines, or the bare content of a single turn) and `Row.messages` keeps them as a JSON
list of {role, content}. Turns after the last assistant turn, and turns of any other role before it
(`tool`, `function`, ...), are not used: `Row.turns_dropped` counts them per row and
`ReadResult.turns_after_last_assistant` / `turns_other_roles` over the rows read.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import errno
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import stat
import sys
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Sequence

from shed_pipeline.core.display import printable
from shed_pipeline.core.files import sha256_file

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# Compression of the text formats (Parquet compresses its own columns), by the file's last suffix.
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
ARCHIVES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz", ".7z", ".rar")
EXPECTED = (
    f"expected one of {', '.join(SUPPORTED_SUFFIXES)}, the text ones optionally compressed as .gz, .zst, .bz2 or .xz"
)
# Records nested deeper than this are quarantined (too_deep): instruction data is a few levels deep.
MAX_DEPTH = 200

# Quarantine reasons (stable strings: they are stored in the lineage DB and queried).
MALFORMED_JSON = "malformed_json"
MALFORMED_CSV = "malformed_csv"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
EMPTY_FIELD = "empty_field"
WRONG_TYPE = "wrong_type"
INVALID_UTF8 = "invalid_utf8"  # bytes that are not valid in the file's encoding (UTF-8 unless a BOM says otherwise)
INVALID_UNICODE = "invalid_unicode"  # a lone surrogate (\ud800..\udfff escape) in a JSON string: not encodable text
TOO_DEEP = "too_deep"
TOO_LONG = "too_long"
DUPLICATE = "duplicate"

CHAT_ROLES = ("system", "user", "assistant")

# csv's default field limit (131,072 characters) would fail a whole file on one long cell; max_chars
# quarantines long rows instead. sys.maxsize overflows a C long on some platforms: halve until accepted.
_limit = sys.maxsize
while True:
    try:
        csv.field_size_limit(_limit)
        break
    except OverflowError:
        _limit //= 2

_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # how surrogateescape (and _bad_bytes below) carries undecodable bytes
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")  # a JSON escape that may decode to a lone surrogate
_BLANK = " \t\r\n\x0b\x0c"  # what bytes.strip() strips: a line of only these is not a record


def _bad_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    # Like surrogateescape, for any decoder: each undecodable byte becomes one char in U+DC80..U+DCFF.
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC80 | (b & 0x7F)) for b in bad), exc.end


codecs.register_error("shed_pipeline.bad_bytes", _bad_bytes)


class SourceError(Exception):
    """A source (file, folder) that cannot be read at all. The message names it and says why."""


@dataclass(frozen=True)
class FieldMapping:
    """Which fields of a source record hold the instruction, input, output (or chat messages).

    `format="alpaca"` reads instruction/input/output fields (input optional); `format="messages"`
    reads a list of {role, content} turns: the last assistant turn is the output and the turns
    before it are the instruction (see the module docstring for what is kept and dropped).
    `format="auto"` picks per record: messages if the record has the messages field, else alpaca.
    """

    format: str = "auto"
    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"
    messages: str = "messages"
    task: str | None = "task"

    def __post_init__(self) -> None:
        if self.format not in ("auto", "alpaca", "messages"):
            raise ValueError(f"format must be auto, alpaca or messages, not {self.format!r}")


@dataclass
class RawUnit:
    """One record as read from a source, before validation."""

    source_file: str
    locator: int  # line number (1-based) for JSONL/CSV, element/row index (0-based) otherwise
    payload: Any  # a dict, or a str that failed to parse
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
class Row:
    row_id: str
    instruction: str
    input: str
    output: str
    task: str | None
    source_file: str
    source_locator: int
    source_order: int  # position in the (sorted) source: "file order" for QOCS
    record: str  # the original record as JSON, so outputs keep the input's own schema
    messages: str | None = None  # chat rows: the prompt turns kept, as a JSON list of {role, content}
    turns_dropped: int = 0  # chat rows: turns after the last assistant turn + tool/other-role turns


@dataclass
class QuarantineEntry:
    source_file: str
    source_locator: int
    reason: str
    detail: str
    row_id: str | None = None
    excerpt: str = ""


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)  # rows kept and not yet handed to validate_units' sink
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    turns_after_last_assistant: int = 0  # over the chat rows kept: turns after their last assistant turn
    turns_other_roles: int = 0  # over the chat rows kept: tool (or other non-chat role) turns before it
    rows_handed_over: dict[str, int] = field(default_factory=dict)  # file -> rows kept and already handed to the sink

    @property
    def rows_kept(self) -> int:
        return len(self.rows) + sum(self.rows_handed_over.values())

    @property
    def rows_in(self) -> int:
        return self.rows_kept + len(self.quarantine)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q.reason] = counts.get(q.reason, 0) + 1
        return dict(sorted(counts.items()))

    def file_counts(self) -> dict[str, tuple[int, int]]:
        """file -> (rows ok, rows quarantined), files in order of first appearance."""
        counts: dict[str, list[int]] = {f: [n, 0] for f, n in self.rows_handed_over.items()}
        for r in self.rows:
            counts.setdefault(r.source_file, [0, 0])[0] += 1
        for q in self.quarantine:
            counts.setdefault(q.source_file, [0, 0])[1] += 1
        return {f: (ok, bad) for f, (ok, bad) in counts.items()}

    def all_quarantined_files(self) -> list[str]:
        """One line per file every unit of which was quarantined (see `all_quarantined_message`)."""
        ok = {r.source_file for r in self.rows} | set(self.rows_handed_over)
        by_file: dict[str, list[QuarantineEntry]] = {}
        for q in self.quarantine:
            if q.source_file not in ok:
                by_file.setdefault(q.source_file, []).append(q)
        return [all_quarantined_message(f, entries) for f, entries in by_file.items()]

    def all_quarantined_message(self, label: str) -> str | None:
        """When no unit of the whole source made a row: one line saying why, naming the file when the
        source has one, else the source and its number of files; None when some unit made a row."""
        if self.rows_kept or not self.quarantine:
            return None
        files = {q.source_file for q in self.quarantine}
        return all_quarantined_message(
            next(iter(files)) if len(files) == 1 else f"{label} ({len(files):,} files)", self.quarantine
        )


def quarantine_summary(entries: Sequence[QuarantineEntry]) -> str:
    """Reasons by count, most first, with the first detail of the top one: "missing_field 1,200 (field ...), wrong_type 3"."""
    counts = Counter(e.reason for e in entries)
    first: dict[str, str] = {}
    for e in entries:
        first.setdefault(e.reason, e.detail)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(
        f"{reason} {n:,}" + (f" ({first[reason]})" if i == 0 else "") for i, (reason, n) in enumerate(ordered)
    )


def all_quarantined_message(file_name: str, entries: Sequence[QuarantineEntry]) -> str:
    """The line for a file (or source) none of whose units made a row, e.g. "all 1,200 rows of FILE
    quarantined: missing_field 1,200 (field 'instruction' is missing; record fields: ...)"."""
    n = len(entries)
    return _clean(f"all {n:,} row{'s' if n != 1 else ''} of {file_name} quarantined: {quarantine_summary(entries)}")


@dataclass
class SourceReport:
    """What reading a source noticed besides its units; filled by list_source_files and read_files."""

    file_units: dict[str, int] = field(default_factory=dict)  # units read from each file, in source order
    encodings: dict[str, str] = field(default_factory=dict)  # files not in plain UTF-8: 'utf-8-sig', 'utf-16-le', ...
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) of folder entries not read
    notes: list[str] = field(default_factory=list)  # one line each, for the log: encodings, empty files, format guesses


def skipped_lines(skipped: Sequence[tuple[str, str]], limit: int = 20) -> list[str]:
    """Log lines for skipped entries: each one up to `limit`, then one line counting the rest by reason."""
    lines = [f"{name}: not read: {why}" for name, why in skipped[:limit]]
    rest = skipped[limit:]
    if rest:
        by_reason = Counter(why.split(" (")[0] for _, why in rest)
        lines.append(
            f"and {len(rest):,} more not read: " + ", ".join(f"{why} {n:,}" for why, n in by_reason.most_common())
        )
    return lines


# One encoder for every row: json.dumps with arguments builds a new one per call (a tenth of reading).
_canonical_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_record_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def row_id_for(instruction: str, input_: str, output: str) -> str:
    """Content hash of a row: equal content, equal id; never keyed by text position or repeatable text alone."""
    canon = _canonical_json([instruction, input_, output])
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:24]


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split())


def _clean(text: str) -> str:
    """Text safe to store anywhere: lone surrogates (undecodable bytes, \\ud800 escapes) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def display_name(path: str | os.PathLike[str]) -> str:
    """What rows, quarantine entries and errors call a file: its path, with bytes that are not UTF-8
    (a name os.fsdecode could only carry as surrogates) and control characters written as \\xNN."""
    return printable(os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace"))


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
    fmt = FORMATS.get(inner if compression else suffix)
    if fmt is None or (fmt == "parquet" and compression):
        return None
    return SourceKind(fmt, compression)


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


def is_hidden(relative: str) -> bool:
    """A path below a source root (`/`-separated) with any component starting with '.'."""
    return any(part.startswith(".") for part in relative.split("/") if part)


def why_skipped(relative: str) -> str | None:
    """None when the file at `relative` (its path below the source root, '/'-separated) is read; else
    why not. The one rule for local folders and s3:// prefixes."""
    if is_hidden(relative):
        return "hidden (a name in its path starts with '.')"
    if source_kind(relative) is None:
        return unsupported_reason(relative)
    return None


def _mode_name(mode: int) -> str:
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return what
    return "an unknown kind of file"


def _entry_kind(path: Path) -> tuple[str, str]:
    """("file" | "dir" | "missing" | "bad", why) for a path, following symbolic links."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            if exc.errno == errno.ELOOP:
                return "bad", "symbolic link loop"
            try:
                target = display_name(os.readlink(path))
            except OSError:
                target = "?"
            return "bad", f"broken symbolic link (points to {target})"
        if isinstance(exc, FileNotFoundError):
            return "missing", "no such file or folder"
        return "bad", f"cannot read ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return "file", ""
    if stat.S_ISDIR(st.st_mode):
        return "dir", ""
    return "bad", f"not a regular file ({_mode_name(st.st_mode)})"


def list_source_files(source: str | os.PathLike[str], skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """A file, or every supported file under a folder (recursive, sorted for determinism).

    In a folder, entries that are not read are appended to `skipped` as (name, why): other types,
    hidden paths (a hidden folder is one entry), links to folders (not followed), FIFOs and other
    special files, broken links and link loops. A source that is none of these fails in one line."""
    path = Path(source)
    shown = display_name(path)
    kind, why = _entry_kind(path)
    if kind in ("missing", "bad"):
        raise SourceError(f"{shown}: {why}")
    if kind == "file":
        if source_kind(path.name) is None:
            raise SourceError(f"{shown}: {unsupported_reason(path.name)} ({EXPECTED})")
        return [path]
    files: list[Path] = []
    found: list[tuple[str, str]] = []
    _scan_folder(path, "", files, found)
    found.sort()
    if skipped is not None:
        skipped.extend(found)
    if not files:
        more = "; ".join(f"{n[len(shown) + 1 :] if n.startswith(shown + '/') else n}: {w}" for n, w in found[:3])
        more = f" (not read: {more}{f'; and {len(found) - 3} more' if len(found) > 3 else ''})" if found else ""
        raise SourceError(f"{shown}: folder holds no {', '.join(SUPPORTED_SUFFIXES)} files{more}")
    return sorted(files)  # Path order (by components), as before


def _scan_folder(folder: Path, relative: str, files: list[Path], skipped: list[tuple[str, str]]) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        if not relative:
            raise SourceError(f"{display_name(folder)}: cannot list the folder ({exc.strerror or exc})") from exc
        skipped.append((display_name(folder) + "/", f"cannot list the folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        path = Path(entry.path)
        rel = f"{relative}{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if entry.name.startswith("."):
            skipped.append(
                (display_name(path) + ("/" if is_dir else ""), "hidden (a name in its path starts with '.')")
            )
            continue
        if is_dir:
            _scan_folder(path, rel + "/", files, skipped)
            continue
        kind, why = _entry_kind(path)
        if kind == "dir":  # a link to a folder: not followed (loops, and files read twice)
            skipped.append((display_name(path), "symbolic link to a folder (not followed)"))
            continue
        if kind != "file":
            skipped.append((display_name(path), why))
            continue
        reason = why_skipped(rel)
        if reason:
            skipped.append((display_name(path), reason))
            continue
        files.append(path)


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
_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _read_bytes(path: Path, name: str | None = None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(name or display_name(path), exc) from exc


def _decompress(data: bytes, compression: str, name: str) -> bytes:
    try:
        if compression == "gzip":
            return gzip.decompress(data)
        if compression == "bz2":
            return bz2.decompress(data)
        if compression == "xz":
            return lzma.decompress(data)
        import pyarrow as pa  # zstd: not in the standard library before Python 3.14

        return pa.CompressedInputStream(pa.BufferReader(data), "zstd").read() if data else b""
    except (
        OSError,
        EOFError,
        ValueError,
        lzma.LZMAError,
        zlib.error,
    ) as exc:  # pyarrow's errors are OSError/ValueError
        raise SourceError(
            f"{name}: not readable as {compression}-compressed data ({_one_line(str(exc)) or type(exc).__name__})"
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


def _text_encoding(data: bytes, name: str, fmt: str, report: SourceReport | None) -> tuple[str, int]:
    """(codec, length of its byte-order mark) of a text file: `utf-8` unless a mark says otherwise.
    Binary content under a text name, and UTF-16/32 without a mark, fail in one line saying so."""
    for magic, what, todo in _MAGIC:
        if data.startswith(magic) and (
            magic != b"PAR1" or data.endswith(magic)
        ):  # Parquet: at both ends, a CSV header may start so
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


def _decode(data: bytes, name: str, fmt: str, report: SourceReport | None) -> tuple[str, str]:
    """The file's text and the name of its encoding. Undecodable bytes become U+DC80..U+DCFF (as
    surrogateescape does), so the records holding them are quarantined as invalid_utf8."""
    codec, skip = _text_encoding(data, name, fmt, report)
    body = data[skip:] if skip else data
    if codec == "utf-8":
        return body.decode("utf-8", "surrogateescape"), "UTF-8"
    return body.decode(codec, "shed_pipeline.bad_bytes"), codec.upper()


def _decoded_lines(fh: BinaryIO, skip: int) -> Iterator[str]:
    """The lines of UTF-8 bytes from `skip` on, each decoded when it is reached: a large JSONL file
    is never held as one big string."""
    fh.seek(skip)
    for raw in fh:
        yield (raw[:-1] if raw.endswith(b"\n") else raw).decode("utf-8", "surrogateescape")


def _utf8_lines(data: bytes, skip: int) -> Iterator[str]:
    return _decoded_lines(io.BytesIO(data), skip)


def _utf8_file_lines(path: Path, skip: int, name: str) -> Iterator[str]:
    """The lines of a UTF-8 file, read and decoded one at a time."""
    try:
        with path.open("rb") as fh:
            yield from _decoded_lines(fh, skip)
    except OSError as exc:
        raise _unreadable(name, exc) from exc


def _unreadable(name: str, exc: OSError) -> SourceError:
    return SourceError(f"{name}: cannot read ({exc.strerror or exc})")


# Files larger than this are streamed (JSON Lines without compression): their bytes are never held whole.
STREAM_MIN_BYTES = 1 << 20


def _ends(path: Path, name: str, size: int, length: int = 4096) -> bytes:
    """A file's first `length` bytes and its last four: what telling its encoding and kind looks at."""
    try:
        with path.open("rb") as fh:
            head = fh.read(length)
            fh.seek(max(0, size - 4))
            return head + fh.read(4)
    except OSError as exc:
        raise _unreadable(name, exc) from exc


class _DupKeys(dict):
    """An object in which a key appeared twice with different values (json keeps the last)."""

    key: str = ""


class _Decoder:
    """json's decoder, noting objects with a key given twice with different values."""

    def __init__(self) -> None:
        self.dups = 0
        self.decode = json.JSONDecoder(object_pairs_hook=self._pairs).decode

    def _pairs(self, pairs: list[tuple[str, Any]]) -> dict:
        d = dict(pairs)
        if len(d) == len(pairs):
            return d
        seen: dict[str, Any] = {}
        for k, v in pairs:
            if k in seen and seen[k] != v:
                out = _DupKeys(d)
                out.key = k
                self.dups += 1
                return out
            seen[k] = v
        return d


def _where(path: tuple, key_name: bool = False) -> str:
    if not path:
        return "the record"
    head, rest = path[0], "".join(f"[{p!r}]" for p in path[1:])
    return (
        f"a field name {head!r}"
        if key_name and len(path) == 1
        else f"field {head!r}{rest}" + (" (a key)" if key_name and len(path) > 1 else "")
    )


def _inspect(unit: RawUnit, file_has_bad_bytes: bool, text: str | None = None) -> None:
    """Walk a parsed record (iteratively: it may be deep) for what makes it unusable: nesting deeper
    than MAX_DEPTH, lone surrogates (from \\ud800-style escapes, or undecodable bytes), duplicate keys."""
    deep = bad_byte = False
    surrogate: tuple[str, str] | None = None
    dup: tuple[tuple, str] | None = None
    stack: list[tuple[Any, tuple]] = [(unit.payload, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            deep = True
            break
        if isinstance(value, str):
            m = _SURROGATE.search(value)
            if m:
                bad_byte = bad_byte or bool(_BAD_BYTE.search(value))
                surrogate = surrogate or (_where(path), m.group())
        elif isinstance(value, dict):
            if isinstance(value, _DupKeys) and dup is None:
                dup = (path, value.key)
            for k, v in reversed(list(value.items())):
                if isinstance(k, str) and _SURROGATE.search(k):
                    bad_byte = bad_byte or bool(_BAD_BYTE.search(k))
                    surrogate = surrogate or (_where((*path, k), key_name=True), _SURROGATE.search(k).group())  # type: ignore[union-attr]
                stack.append((v, (*path, k)))
        elif isinstance(value, list):
            stack.extend((value[i], (*path, i)) for i in reversed(range(len(value))))
    if deep:
        what = _JSON_TYPES.get(type(unit.payload), "a value")
        unit.payload = text if text is not None else f"<{what} nested more than {MAX_DEPTH} levels deep>"
        unit.problem = (TOO_DEEP, f"nested more than {MAX_DEPTH} levels deep")
    elif surrogate and bad_byte and file_has_bad_bytes:
        unit.invalid_utf8 = True
    elif surrogate:
        where, ch = surrogate
        unit.problem = (INVALID_UNICODE, f"record contains a lone surrogate escape (\\u{ord(ch):04x}) in {where}")
    elif dup:
        path, key = dup
        unit.problem = (
            MALFORMED_JSON,
            f"key {key!r} appears twice with different values" + (f" in {_where(path)}" if path else ""),
        )


def _records_of(payload: Any, name: str) -> list:
    """The records of a parsed JSON file: an array, or the one list of a {"data": [...]}-style wrapper."""
    if isinstance(payload, dict):
        # Accept {"data": [...]} / {"examples": [...]} wrappers, common in published sets.
        lists = [v for k, v in payload.items() if k in ("data", "examples", "rows", "records") and isinstance(v, list)]
        if len(lists) != 1:
            fields = ", ".join(repr(k) for k in list(payload)[:8]) or "none"
            raise SourceError(
                _one_line(
                    f"{name}: expected a JSON array of records (or an object with one 'data'/'examples'/'rows'/'records' list); found an object with fields {fields}"
                )
            )
        payload = lists[0]
    if not isinstance(payload, list):
        raise SourceError(
            f"{name}: expected a JSON array of records, found {_JSON_TYPES.get(type(payload), type(payload).__name__)}"
        )
    return payload


def _json_elements(records: list, text: str, dec: _Decoder, name: str, encoding: str) -> Iterator[RawUnit]:
    has_bad = bool(_BAD_BYTE.search(text))
    check = (
        has_bad or dec.dups > 0 or bool(_SURROGATE_ESCAPE.search(text)) or text.count("[") + text.count("{") > MAX_DEPTH
    )
    for idx, item in enumerate(records):
        unit = RawUnit(name, idx, item, encoding=encoding)
        if check:
            _inspect(unit, has_bad)
        yield unit


def _json_units(text: str, name: str, encoding: str, report: SourceReport | None) -> Iterator[RawUnit]:
    if not text.strip(_BLANK):
        return
    dec = _Decoder()
    try:
        payload = dec.decode(text)
    except json.JSONDecodeError as exc:
        first = next((line for line in text.split("\n") if line.strip(_BLANK)), "")
        if exc.msg == "Extra data" and first.lstrip(_BLANK).startswith("{"):
            try:
                json.loads(first)
            except (ValueError, RecursionError):
                pass
            else:  # JSON Lines in a file named .json: common; read it as what it is
                if report is not None:
                    report.notes.append(
                        f"{name}: holds JSON Lines (one record per line), not one JSON value; read line by line"
                    )
                yield from _jsonl_lines(text.split("\n"), name, encoding)
                return
        raise SourceError(
            _one_line(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
        ) from exc
    except RecursionError as exc:
        raise SourceError(f"{name}: not valid JSON (nested too deeply to parse)") from exc
    yield from _json_elements(_records_of(payload, name), text, dec, name, encoding)


def _jsonl_units(data: bytes, name: str, report: SourceReport | None, path: Path | None = None) -> Iterator[RawUnit]:
    """`data`: the file's bytes; or, with `path` (an uncompressed file), only its first and last
    bytes, enough to tell its encoding, and its lines are read from the file one at a time."""
    codec, skip = _text_encoding(data, name, "jsonl", report)
    if path is not None and codec != "utf-8":
        data, path = _read_bytes(path, name), None  # UTF-16/32: decoded whole, as before
    text = None if codec == "utf-8" else data[skip:].decode(codec, "shed_pipeline.bad_bytes")
    encoding = codec.upper()

    def utf8_lines() -> Iterator[str]:
        return _utf8_lines(data, skip) if path is None else _utf8_file_lines(path, skip, name)

    first = next((line for line in (text.split("\n") if text is not None else utf8_lines()) if line.strip(_BLANK)), "")
    head = first.lstrip(_BLANK)[:1]
    if head == "[" or (head == "{" and not _parses(first)):
        # A JSON array, or an object spread over many lines (a data wrapper, pretty-printed), in a
        # file named .jsonl: read it as JSON. A record on one line is a JSON Lines record, whatever
        # its fields are called.
        if path is not None:
            data, path = _read_bytes(path, name), None
        text = text if text is not None else data[skip:].decode("utf-8", "surrogateescape")
        dec = _Decoder()
        try:
            whole = dec.decode(text)
        except (ValueError, RecursionError):
            whole = None
        try:
            records = _records_of(whole, name) if isinstance(whole, (list, dict)) else None
        except SourceError:
            records = None
        if records is not None and (isinstance(whole, dict) or any(isinstance(r, dict) for r in records)):
            if report is not None:
                report.notes.append(
                    f"{name}: holds one JSON {'array' if isinstance(whole, list) else 'object'}, not JSON Lines; read as JSON"
                )
            yield from _json_elements(records, text, dec, name, encoding)
            return
    yield from _jsonl_lines(text.split("\n") if text is not None else utf8_lines(), name, encoding)


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _jsonl_lines(lines: Iterable[str], name: str, encoding: str) -> Iterator[RawUnit]:
    dec = _Decoder()
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("\ufeff"):
            line = line[1:]  # a byte-order mark inside: files concatenated with cat
        if not line.strip(_BLANK):
            continue  # blank lines are not records
        line = line.rstrip("\r")
        bad = not line.isascii() and _BAD_BYTE.search(line) is not None  # isascii: a C scan, far cheaper than the regex
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
            or ("\\u" in line and _SURROGATE_ESCAPE.search(line))
            or (len(line) > MAX_DEPTH and line.count("[") + line.count("{") > MAX_DEPTH)
        ):
            _inspect(unit, bad, line)
        yield unit


def _csv_units(text: str, name: str, encoding: str) -> Iterator[RawUnit]:
    units: list[RawUnit] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if header is None:
            return
        repeated = [h for i, h in enumerate(header) if h and h in header[:i]]
        if repeated:
            raise SourceError(
                _clean(
                    f"{name}: the CSV header names column {repeated[0]!r} more than once (one would hide the other); rename one"
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
            bad = any(isinstance(v, str) and _BAD_BYTE.search(v) for kv in record.items() for v in kv)
            if None in record:  # more cells than header columns
                extra = record.pop(None)
                bad = bad or any(_BAD_BYTE.search(v) for v in extra)
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
        raise SourceError(_one_line(f"{name}: not valid CSV ({exc})")) from exc
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
                    f"a quoted cell opened on line {start} is never closed: lines {start}-{last.locator} were read as one row",
                )
    yield from units


def _parquet_units(path: Path, name: str) -> Iterator[RawUnit]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow opens a path as UTF-8: a name that is not (surrogates) is read from memory instead.
        table = pq.read_table(
            str(path) if not _SURROGATE.search(str(path)) else pa.BufferReader(_read_bytes(path, name))
        )
        items = table.to_pylist()
    except SourceError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise SourceError(_one_line(f"{name}: not a readable Parquet file ({exc})")) from exc
    for idx, item in enumerate(items):
        yield RawUnit(name, idx, item)


def iter_units(path: Path, name: str | None = None, report: SourceReport | None = None) -> Iterator[RawUnit]:
    """Yield the raw units of one file. Raises SourceError if the file as a whole is unreadable.
    `name` is what rows and errors call the file (an s3:// location read from a local copy); its
    suffixes decide the format. `report` collects encodings and notes."""
    name = name or display_name(path)
    kind = source_kind(name)
    if kind is None:
        raise SourceError(f"{name}: {unsupported_reason(name)} ({EXPECTED})")
    if kind.format == "parquet":
        yield from _parquet_units(path, name)
        return
    if kind.format == "jsonl" and not kind.compression:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise _unreadable(name, exc) from exc
        if size > STREAM_MIN_BYTES:
            yield from _jsonl_units(_ends(path, name, size), name, report, path=path)
            return
    data = _read_bytes(path, name)
    if kind.compression:
        data = _decompress(data, kind.compression, name)
    if kind.format == "jsonl":
        yield from _jsonl_units(data, name, report)
        return
    text, encoding = _decode(data, name, kind.format, report)
    if kind.format == "json":
        yield from _json_units(text, name, encoding, report)
    else:
        yield from _csv_units(text, name, encoding)


def read_units(source: str | os.PathLike[str], report: SourceReport | None = None) -> list[RawUnit]:
    skipped = report.skipped if report is not None else None
    return read_files([(path, display_name(path)) for path in list_source_files(source, skipped)], report)


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


def sample_units(units: Sequence[RawUnit], n: int | None, seed: int, stratify: str | None = None) -> list[RawUnit]:
    """A deterministic sample of n units, by hash of (seed, content): independent of file order.

    With `stratify` naming a field, the sample is spread evenly over that field's values (a value
    with fewer units than its share gives its surplus to the others). Order of the result follows
    the source order.
    """
    if n is None or n >= len(units):
        return list(units)
    if n <= 0:
        raise ValueError(f"rows must be positive, got {n}")

    def key(u: RawUnit) -> str:
        return hashlib.sha256(f"{seed}:{u.fingerprint()}".encode()).hexdigest()

    groups: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        g = ""
        if stratify and isinstance(u.payload, dict):
            g = str(u.payload.get(stratify, ""))
        groups.setdefault(g, []).append(i)
    for g in groups:
        groups[g].sort(key=lambda i: (key(units[i]), i))  # identical records: source order
    # Even allocation with surplus redistribution (water-filling).
    quota = {g: 0 for g in groups}
    remaining = n
    open_groups = sorted(groups)
    while remaining > 0 and open_groups:
        share, extra = divmod(remaining, len(open_groups))
        next_open = []
        for j, g in enumerate(open_groups):
            want = share + (1 if j < extra else 0)
            take = min(want, len(groups[g]) - quota[g])
            quota[g] += take
            remaining -= take
            if quota[g] < len(groups[g]):
                next_open.append(g)
        if next_open == open_groups and share == 0 and extra == 0:
            break
        open_groups = next_open
    chosen = sorted(i for g, idx in groups.items() for i in idx[: quota[g]])
    return [units[i] for i in chosen]


def _excerpt(payload: Any, limit: int = 200) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    return _clean(text)[:limit]


def _fields_of(record: dict, limit: int = 8) -> str:
    keys = list(record)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return (shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")) if keys else "none"


def _string_field(record: dict, name: str, required: bool) -> tuple[str | None, tuple[str, str] | None]:
    """(value, None) or (None, (reason, detail))."""
    if name not in record or record[name] is None:
        if required:
            if name in record:
                return None, (MISSING_FIELD, f"field {name!r} is null")
            return None, (MISSING_FIELD, f"field {name!r} is missing; record fields: {_fields_of(record)}")
        return "", None
    value = record[name]
    if not isinstance(value, str):
        return None, (WRONG_TYPE, f"field {name!r} is {type(value).__name__}, expected a string")
    if required and not value.strip():
        return None, (EMPTY_FIELD, f"field {name!r} is empty")
    return value, None


class _Chat(NamedTuple):
    instruction: str
    output: str
    messages: str  # the prompt turns kept, as JSON
    after_last: int  # turns after the last assistant turn
    other_roles: int  # turns before it whose role is not system/user/assistant


def _from_messages(record: dict, name: str) -> tuple[_Chat | None, tuple[str, str] | None]:
    messages = record.get(name)
    if messages is None:
        if name in record:
            return None, (MISSING_FIELD, f"field {name!r} is null")
        return None, (MISSING_FIELD, f"field {name!r} is missing; record fields: {_fields_of(record)}")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None, (WRONG_TYPE, f"field {name!r} must be a list of {{role, content}} objects")
    if not messages:
        return None, (EMPTY_FIELD, f"field {name!r} is an empty list")
    for i, m in enumerate(messages):
        for key in ("role", "content"):
            if not isinstance(m.get(key), str):
                found = "missing" if key not in m else f"{type(m[key]).__name__}"
                return None, (
                    WRONG_TYPE,
                    f"every turn in {name!r} needs string 'role' and 'content' (turn {i} {key}: {found})",
                )
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return None, (MISSING_FIELD, f"{name!r} has no assistant turn to learn from")
    output = messages[last]["content"]
    prompt_turns = [m for m in messages[:last] if m["role"] in CHAT_ROLES]
    instruction = "\n\n".join(
        f"{m['role']}: {m['content']}" if len(prompt_turns) > 1 else m["content"] for m in prompt_turns
    )
    if not instruction.strip():
        return None, (EMPTY_FIELD, f"{name!r} has no user turn before the assistant turn")
    if not output.strip():
        return None, (EMPTY_FIELD, "the assistant turn is empty")
    kept = json.dumps(
        [{"role": m["role"], "content": m["content"]} for m in prompt_turns], ensure_ascii=False, separators=(",", ":")
    )
    return _Chat(instruction, output, kept, len(messages) - 1 - last, last - len(prompt_turns)), None


def validate_units(
    units: Iterable[RawUnit],
    mapping: FieldMapping,
    max_chars: int,
    sink: Callable[[list[Row]], None] | None = None,
    sink_rows: int = 65_536,
) -> ReadResult:
    """Turn raw units into rows or quarantine entries (exact duplicates: the first one is kept).
    With `sink`, kept rows are handed to it `sink_rows` at a time (and at the end) instead of piling
    up in `result.rows`: a million rows never exist as Python objects all at once."""
    result = ReadResult()
    seen: dict[str, tuple[str, int]] = {}

    def hand_over() -> None:
        for r in result.rows:
            result.rows_handed_over[r.source_file] = result.rows_handed_over.get(r.source_file, 0) + 1
        sink(result.rows)
        result.rows = []

    for order, unit in enumerate(units):
        if sink is not None and len(result.rows) >= sink_rows:
            hand_over()

        def quarantine(reason: str, detail: str, row_id: str | None = None, unit: RawUnit = unit) -> None:
            detail = f"{detail} ({unit.note})" if unit.note else detail
            result.quarantine.append(
                QuarantineEntry(
                    _clean(unit.source_file), unit.locator, reason, _clean(detail), row_id, _excerpt(unit.payload)
                )
            )

        if unit.invalid_utf8:
            quarantine(INVALID_UTF8, f"record contains bytes that are not valid {unit.encoding}")
            continue
        if unit.parse_error is not None:
            quarantine(MALFORMED_JSON, unit.parse_error)
            continue
        if unit.problem is not None:
            quarantine(*unit.problem)
            continue
        record = unit.payload
        if not isinstance(record, dict):
            quarantine(NOT_AN_OBJECT, f"record is a {type(record).__name__}, expected an object")
            continue
        chat: _Chat | None = None
        use_messages = mapping.format == "messages" or (
            mapping.format == "auto" and mapping.messages in record and mapping.instruction not in record
        )
        if use_messages:
            chat, err = _from_messages(record, mapping.messages)
            if err:
                quarantine(*err)
                continue
            assert chat is not None
            instruction, input_, output = chat.instruction, "", chat.output
        else:
            instruction, err = _string_field(record, mapping.instruction, required=True)
            if err:
                quarantine(*err)
                continue
            input_, err = _string_field(record, mapping.input, required=False)
            if err:
                quarantine(*err)
                continue
            output, err = _string_field(record, mapping.output, required=True)
            if err:
                quarantine(*err)
                continue
        assert instruction is not None and input_ is not None and output is not None
        size = len(instruction) + len(input_) + len(output)
        rid = row_id_for(instruction, input_, output)
        if size > max_chars:
            quarantine(TOO_LONG, f"{size} characters, limit {max_chars}", rid)
            continue
        if rid in seen:
            first_file, first_loc = seen[rid]
            quarantine(DUPLICATE, f"same content as {first_file}:{first_loc}", rid)
            continue
        seen[rid] = (unit.source_file, unit.locator)
        task = record.get(mapping.task) if mapping.task else None  # any JSON value: str() of it, as sampling groups by
        if chat is not None:
            result.turns_after_last_assistant += chat.after_last
            result.turns_other_roles += chat.other_roles
        result.rows.append(
            Row(
                row_id=rid,
                instruction=instruction,
                input=input_,
                output=output,
                task=str(task) if task is not None else None,
                source_file=unit.source_file,
                source_locator=unit.locator,
                source_order=order,
                record=_record_json(record),
                messages=chat.messages if chat is not None else None,
                turns_dropped=chat.after_last + chat.other_roles if chat is not None else 0,
            )
        )
    if sink is not None and result.rows:
        hand_over()
    return result


def consumed(units: list[RawUnit]) -> Iterator[RawUnit]:
    """The units of a list, each dropped from it once yielded: validating a large source frees each
    record as its row is made (the caller must not use the list afterwards)."""
    for i in range(len(units)):
        unit, units[i] = units[i], None  # type: ignore[call-overload]
        yield unit


def split_of(row_id: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    """pool / validation / test from a hash of (seed, row id): adding rows never moves a row."""
    if not (0 <= validation_fraction and 0 <= test_fraction and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be >= 0 and sum to less than 1")
    h = int(hashlib.sha256(f"split:{seed}:{row_id}".encode()).hexdigest()[:15], 16) / float(1 << 60)
    if h < validation_fraction:
        return "validation"
    if h < validation_fraction + test_fraction:
        return "test"
    return "pool"


def file_digest(path: Path) -> str:
    """sha256 of a source file's bytes; an unreadable file is a SourceError naming it."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise _unreadable(display_name(path), exc) from exc


def combine_digests(named: Sequence[tuple[str, str]]) -> str:
    """The fingerprint of a set of files from (name, sha256 hex) pairs, in source order."""
    h = hashlib.sha256()
    for name, digest in named:
        h.update(name.encode("utf-8", "surrogateescape"))  # a file name that is not UTF-8: its bytes
        h.update(bytes.fromhex(digest))
    return h.hexdigest()[:24]


def source_fingerprint(files: Sequence[Path]) -> str:
    """Content hash of a set of files (names relative to nothing: content and order only)."""
    return combine_digests([(f.name, file_digest(f)) for f in files])
