"""Where a unit is quarantined: the checks that turn each raw unit into a row or a quarantine entry
with a reason (`reasons`), and the quarantine records and their summaries.

Each check looks at one thing and returns None (keep going) or a `Problem`, (reason, detail).
`validate_units` runs them in this order and quarantines a unit at its first problem: what reading
found (`UNIT_CHECKS`: bytes not valid in the file's encoding, a line that does not parse, a problem
the reader set, a record that is not an object), the mapped fields (`alpaca_fields` or
`chat_fields`), the length limit (`within_length`), then exact duplicates (the first one is kept).

Chat records (`FieldMapping.messages`): the last assistant turn is the output; the system, user and
assistant turns before it are the prompt. `instruction` is those turns flattened ("role: content"
joined by blank lines, or the bare content of a single turn) and `Row.messages` keeps them as a JSON
list of {role, content}. Turns after the last assistant turn, and turns of any other role before it
(`tool`, `function`, ...), are not used: `Row.turns_dropped` counts them per row and
`ReadResult.turns_after_last_assistant` / `turns_other_roles` over the rows read.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from shed_pipeline.core.sources.reasons import (
    DUPLICATE,
    EMPTY_FIELD,
    INVALID_UTF8,
    MALFORMED_JSON,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    TOO_LONG,
    WRONG_TYPE,
)
from shed_pipeline.core.sources.rows import Row, row_id_for
from shed_pipeline.core.sources.units import RawUnit, clean

Problem = tuple[str, str]  # (reason, detail): why a unit is quarantined

CHAT_ROLES = ("system", "user", "assistant")

_record_json = json.JSONEncoder(ensure_ascii=False, default=str).encode  # one encoder for every row


@dataclass(frozen=True, kw_only=True)
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


# -- quarantine records ---------------------------------------------------------------------------


@dataclass
class QuarantineEntry:
    source_file: str
    source_locator: int
    reason: str
    detail: str
    _: KW_ONLY
    row_id: str | None = None
    excerpt: str = ""


def _excerpt(payload: Any, limit: int = 200) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    return clean(text)[:limit]


def quarantine_entry(unit: RawUnit, problem: Problem, row_id: str | None = None) -> QuarantineEntry:
    """The entry for a unit quarantined for `problem`; its detail ends with the unit's note, if any."""
    reason, detail = problem
    detail = f"{detail} ({unit.note})" if unit.note else detail
    return QuarantineEntry(
        clean(unit.source_file),
        unit.locator,
        reason,
        clean(detail),
        row_id=row_id,
        excerpt=_excerpt(unit.payload),
    )


def quarantine_summary(entries: Sequence[QuarantineEntry]) -> str:
    """Reasons by count, most first, with the first detail of the top one:
    "missing_field 1,200 (field ...), wrong_type 3"."""
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
    return clean(f"all {n:,} row{'s' if n != 1 else ''} of {file_name} quarantined: {quarantine_summary(entries)}")


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)  # rows kept and not yet handed to validate_units' sink
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    turns_after_last_assistant: int = 0  # over the chat rows kept: turns after their last assistant turn
    turns_other_roles: int = 0  # over the chat rows kept: tool (or other non-chat role) turns before it
    # File -> rows kept and already handed to the sink.
    rows_handed_over: dict[str, int] = field(default_factory=dict)

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


# -- checks of the unit as read -------------------------------------------------------------------


def decodable(unit: RawUnit) -> Problem | None:
    """Bytes not valid in the file's encoding."""
    return (INVALID_UTF8, f"record contains bytes that are not valid {unit.encoding}") if unit.invalid_utf8 else None


def parsed(unit: RawUnit) -> Problem | None:
    """A JSON Lines line that does not parse."""
    return (MALFORMED_JSON, unit.parse_error) if unit.parse_error is not None else None


def read_cleanly(unit: RawUnit) -> Problem | None:
    """What the reader found while parsing: too deep, a lone surrogate, a duplicate key, a bad CSV row."""
    return unit.problem


def an_object(unit: RawUnit) -> Problem | None:
    """A record that is not an object (a JSON array or scalar)."""
    if isinstance(unit.payload, dict):
        return None
    return NOT_AN_OBJECT, f"record is a {type(unit.payload).__name__}, expected an object"


UNIT_CHECKS: tuple[Callable[[RawUnit], Problem | None], ...] = (decodable, parsed, read_cleanly, an_object)


def unit_problem(unit: RawUnit) -> Problem | None:
    """The first problem `UNIT_CHECKS` find, in their order; None for a record to read fields from."""
    for check in UNIT_CHECKS:
        problem = check(unit)
        if problem is not None:
            return problem
    return None


# -- checks of the mapped fields ------------------------------------------------------------------


class Chat(NamedTuple):
    instruction: str
    output: str
    messages: str  # the prompt turns kept, as JSON
    after_last: int  # turns after the last assistant turn
    other_roles: int  # turns before it whose role is not system/user/assistant


def _fields_of(record: dict, limit: int = 8) -> str:
    keys = list(record)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return (shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")) if keys else "none"


def _missing(record: dict, name: str) -> Problem:
    if name in record:
        return MISSING_FIELD, f"field {name!r} is null"
    return MISSING_FIELD, f"field {name!r} is missing; record fields: {_fields_of(record)}"


def uses_messages(record: dict, mapping: FieldMapping) -> bool:
    """Whether a record is read as chat messages (see `FieldMapping.format`)."""
    return mapping.format == "messages" or (
        mapping.format == "auto" and mapping.messages in record and mapping.instruction not in record
    )


def string_field(record: dict, name: str, required: bool) -> tuple[str | None, Problem | None]:
    """(value, None) or (None, problem): a string, and not blank when `required` ("" when an optional
    field is missing or null)."""
    if name not in record or record[name] is None:
        if required:
            return None, _missing(record, name)
        return "", None
    value = record[name]
    if not isinstance(value, str):
        return None, (WRONG_TYPE, f"field {name!r} is {type(value).__name__}, expected a string")
    if required and not value.strip():
        return None, (EMPTY_FIELD, f"field {name!r} is empty")
    return value, None


def alpaca_fields(record: dict, mapping: FieldMapping) -> tuple[tuple[str, str, str] | None, Problem | None]:
    """((instruction, input, output), None), or (None, the first field's problem)."""
    instruction, problem = string_field(record, mapping.instruction, required=True)
    if problem:
        return None, problem
    input_, problem = string_field(record, mapping.input, required=False)
    if problem:
        return None, problem
    output, problem = string_field(record, mapping.output, required=True)
    if problem:
        return None, problem
    assert instruction is not None and input_ is not None and output is not None
    return (instruction, input_, output), None


def chat_fields(record: dict, name: str) -> tuple[Chat | None, Problem | None]:
    """(the chat read from the `name` field's turns, None), or (None, problem)."""
    messages = record.get(name)
    if messages is None:
        return None, _missing(record, name)
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
    return Chat(instruction, output, kept, len(messages) - 1 - last, last - len(prompt_turns)), None


# -- checks of the row --------------------------------------------------------------------------


def within_length(instruction: str, input_: str, output: str, max_chars: int) -> Problem | None:
    """Instruction, input and output together no longer than `max_chars` characters."""
    size = len(instruction) + len(input_) + len(output)
    return (TOO_LONG, f"{size} characters, limit {max_chars}") if size > max_chars else None


def first_of_its_content(row_id: str, seen: dict[str, tuple[str, int]]) -> Problem | None:
    """Not an exact duplicate of a row kept before (`seen`: row id -> its file and locator)."""
    if row_id not in seen:
        return None
    first_file, first_loc = seen[row_id]
    return DUPLICATE, f"same content as {first_file}:{first_loc}"


# -- validation -----------------------------------------------------------------------------------


def validate_units(
    units: Iterable[RawUnit],
    mapping: FieldMapping,
    max_chars: int,
    sink: Callable[[list[Row]], None] | None = None,
    sink_rows: int = 65_536,
) -> ReadResult:
    """Turn raw units into rows or quarantine entries (the checks above, in order).
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
        problem = unit_problem(unit)
        if problem is not None:
            result.quarantine.append(quarantine_entry(unit, problem))
            continue
        record = unit.payload
        chat: Chat | None = None
        if uses_messages(record, mapping):
            chat, problem = chat_fields(record, mapping.messages)
            fields = (chat.instruction, "", chat.output) if chat is not None else None
        else:
            fields, problem = alpaca_fields(record, mapping)
        if problem:
            result.quarantine.append(quarantine_entry(unit, problem))
            continue
        assert fields is not None
        instruction, input_, output = fields
        rid = row_id_for(instruction, input_, output)
        problem = within_length(instruction, input_, output, max_chars) or first_of_its_content(rid, seen)
        if problem is not None:
            result.quarantine.append(quarantine_entry(unit, problem, rid))
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
