"""Reading instruction data into rows with stable ids, and quarantining what cannot be used.

Every unit read from a source (a JSONL line, an element of a JSON array, a Parquet or CSV row) ends
up either as a row or as a quarantine entry with a reason, so `rows_in == rows_ok + rows_quarantined`.
A file that cannot be read at all raises `SourceError` naming the file and the reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from shed_pipeline.core.files import sha256_file

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")

# Quarantine reasons (stable strings: they are stored in the lineage DB and queried).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
EMPTY_FIELD = "empty_field"
WRONG_TYPE = "wrong_type"
INVALID_UTF8 = "invalid_utf8"
TOO_LONG = "too_long"
DUPLICATE = "duplicate"


class SourceError(Exception):
    """A source (file, folder) that cannot be read at all. The message names it and says why."""


@dataclass(frozen=True)
class FieldMapping:
    """Which fields of a source record hold the instruction, input, output (or chat messages).

    `format="alpaca"` reads instruction/input/output fields (input optional); `format="messages"`
    reads a list of {role, content} turns: the last assistant turn is the output and the turns
    before it are the instruction. `format="auto"` picks per record: messages if the record has the
    messages field, else alpaca.
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

    def fingerprint(self) -> str:
        """Hash of the unit's content (not its position): used for sampling."""
        if isinstance(self.payload, str):
            text = self.payload
        else:
            text = json.dumps(self.payload, sort_keys=True, ensure_ascii=True, default=str)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


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
    rows: list[Row] = field(default_factory=list)
    quarantine: list[QuarantineEntry] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.quarantine)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q.reason] = counts.get(q.reason, 0) + 1
        return dict(sorted(counts.items()))


def row_id_for(instruction: str, input_: str, output: str) -> str:
    """Content hash of a row: equal content, equal id; never keyed by text position or repeatable text alone."""
    canon = json.dumps([instruction, input_, output], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:24]


def list_source_files(source: str | os.PathLike[str]) -> list[Path]:
    """A file, or every supported file under a folder (recursive, sorted for determinism)."""
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(f"{path}: unsupported file type {path.suffix!r} (expected one of {', '.join(SUPPORTED_SUFFIXES)})")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise SourceError(f"{path}: folder holds no {', '.join(SUPPORTED_SUFFIXES)} files")
    return files


def _has_surrogates(value: Any) -> bool:
    # Text decoded with surrogateescape carries undecodable bytes as lone surrogates U+DC80..U+DCFF.
    if isinstance(value, str):
        return any("\udc80" <= ch <= "\udcff" for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    return False


def _read_bytes(path: Path, name: str | None = None) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{name or path}: cannot read ({exc.strerror or exc})") from exc


def iter_units(path: Path, name: str | None = None) -> Iterator[RawUnit]:
    """Yield the raw units of one file. Raises SourceError if the file as a whole is unreadable.
    `name` is what rows and errors call the file (an s3:// location read from a local copy)."""
    suffix = path.suffix.lower()
    name = name or str(path)
    if suffix in (".jsonl", ".ndjson"):
        data = _read_bytes(path, name)
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue  # blank lines are not records
            text = raw.decode("utf-8", "surrogateescape").rstrip("\r")
            bad_utf8 = _has_surrogates(text)
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawUnit(name, lineno, text, parse_error=f"{exc.msg} at column {exc.colno}", invalid_utf8=bad_utf8)
                continue
            yield RawUnit(name, lineno, payload, invalid_utf8=bad_utf8)
    elif suffix == ".json":
        text = _read_bytes(path, name).decode("utf-8", "surrogateescape")
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
        if isinstance(payload, dict):
            # Accept {"data": [...]} / {"examples": [...]} wrappers, common in published sets.
            lists = [v for k, v in payload.items() if k in ("data", "examples", "rows", "records") and isinstance(v, list)]
            if len(lists) != 1:
                raise SourceError(f"{name}: expected a JSON array of records (or an object with one 'data'/'examples' list)")
            payload = lists[0]
        if not isinstance(payload, list):
            raise SourceError(f"{name}: expected a JSON array of records, found {type(payload).__name__}")
        for idx, item in enumerate(payload):
            yield RawUnit(name, idx, item, invalid_utf8=_has_surrogates(item))
    elif suffix == ".csv":
        text = _read_bytes(path, name).decode("utf-8", "surrogateescape")
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            for record in reader:
                if None in record:  # more cells than header columns
                    extra = record.pop(None)
                    yield RawUnit(name, reader.line_num, json.dumps(record, default=str), parse_error=f"{len(extra)} cells beyond the header", invalid_utf8=_has_surrogates(record))
                    continue
                yield RawUnit(name, reader.line_num, dict(record), invalid_utf8=_has_surrogates(record))
        except csv.Error as exc:
            raise SourceError(f"{name}: not valid CSV ({exc})") from exc
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise SourceError(f"{name}: not a readable Parquet file ({exc})") from exc
        for idx, item in enumerate(table.to_pylist()):
            yield RawUnit(name, idx, item)
    else:
        raise SourceError(f"{name}: unsupported file type {suffix!r}")


def read_units(source: str | os.PathLike[str]) -> list[RawUnit]:
    return read_files([(path, str(path)) for path in list_source_files(source)])


def read_files(files: Sequence[tuple[Path, str]]) -> list[RawUnit]:
    """The units of (local file, name to report) pairs, in order."""
    units: list[RawUnit] = []
    for path, name in files:
        units.extend(iter_units(path, name))
    return units


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
    text = "".join(ch if not ("\udc80" <= ch <= "\udcff") else "\ufffd" for ch in text)
    return text[:limit]


def _string_field(record: dict, name: str, required: bool) -> tuple[str | None, tuple[str, str] | None]:
    """(value, None) or (None, (reason, detail))."""
    if name not in record or record[name] is None:
        if required:
            return None, (MISSING_FIELD, f"field {name!r} is missing")
        return "", None
    value = record[name]
    if not isinstance(value, str):
        return None, (WRONG_TYPE, f"field {name!r} is {type(value).__name__}, expected a string")
    if required and not value.strip():
        return None, (EMPTY_FIELD, f"field {name!r} is empty")
    return value, None


def _from_messages(record: dict, name: str) -> tuple[tuple[str, str, str] | None, tuple[str, str] | None]:
    messages = record.get(name)
    if messages is None:
        return None, (MISSING_FIELD, f"field {name!r} is missing")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None, (WRONG_TYPE, f"field {name!r} must be a list of {{role, content}} objects")
    for m in messages:
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return None, (WRONG_TYPE, f"every turn in {name!r} needs string 'role' and 'content'")
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return None, (MISSING_FIELD, f"{name!r} has no assistant turn to learn from")
    output = messages[last]["content"]
    prompt_turns = [m for m in messages[:last] if m["role"] in ("system", "user", "assistant")]
    instruction = "\n\n".join(f"{m['role']}: {m['content']}" if len(prompt_turns) > 1 else m["content"] for m in prompt_turns)
    if not instruction.strip():
        return None, (EMPTY_FIELD, f"{name!r} has no user turn before the assistant turn")
    if not output.strip():
        return None, (EMPTY_FIELD, "the assistant turn is empty")
    return (instruction, "", output), None


def validate_units(units: Iterable[RawUnit], mapping: FieldMapping, max_chars: int) -> ReadResult:
    """Turn raw units into rows or quarantine entries (exact duplicates: the first one is kept)."""
    result = ReadResult()
    seen: dict[str, tuple[str, int]] = {}
    for order, unit in enumerate(units):

        def quarantine(reason: str, detail: str, row_id: str | None = None, unit: RawUnit = unit) -> None:
            result.quarantine.append(QuarantineEntry(unit.source_file, unit.locator, reason, detail, row_id, _excerpt(unit.payload)))

        if unit.invalid_utf8:
            quarantine(INVALID_UTF8, "record contains bytes that are not valid UTF-8")
            continue
        if unit.parse_error is not None:
            quarantine(MALFORMED_JSON, unit.parse_error)
            continue
        record = unit.payload
        if not isinstance(record, dict):
            quarantine(NOT_AN_OBJECT, f"record is a {type(record).__name__}, expected an object")
            continue
        use_messages = mapping.format == "messages" or (mapping.format == "auto" and mapping.messages in record and mapping.instruction not in record)
        if use_messages:
            parsed, err = _from_messages(record, mapping.messages)
            if err:
                quarantine(*err)
                continue
            instruction, input_, output = parsed  # type: ignore[misc]
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
        task = record.get(mapping.task) if mapping.task else None
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
                record=json.dumps(record, ensure_ascii=False, default=str),
            )
        )
    return result


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
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def combine_digests(named: Sequence[tuple[str, str]]) -> str:
    """The fingerprint of a set of files from (name, sha256 hex) pairs, in source order."""
    h = hashlib.sha256()
    for name, digest in named:
        h.update(name.encode())
        h.update(bytes.fromhex(digest))
    return h.hexdigest()[:24]


def source_fingerprint(files: Sequence[Path]) -> str:
    """Content hash of a set of files (names relative to nothing: content and order only)."""
    return combine_digests([(f.name, file_digest(f)) for f in files])
