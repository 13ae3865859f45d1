"""Where a unit is quarantined: the checks that turn each raw unit into a row or a quarantine entry
with a reason (`reasons`).

Each check looks at one thing and returns None (keep going) or a `Problem`, (reason, detail).
`validate_units` runs them in this order and quarantines a unit at its first problem: what reading
found (`UNIT_CHECKS`: bytes not valid in the file's encoding, a line that does not parse, a problem
the reader set, a record that is not an object), the mapped fields (`fields.alpaca_fields` or
`fields.chat_fields`), the length limit (`within_length`), then exact duplicates (the first one is
kept). The entries and the counts that balance are in `quarantine`.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator

from shed_pipeline.core.sources.fields import Chat, FieldMapping, alpaca_fields, chat_fields, uses_messages
from shed_pipeline.core.sources.quarantine import ReadResult, quarantine_entry
from shed_pipeline.core.sources.reasons import DUPLICATE, INVALID_UTF8, MALFORMED_JSON, NOT_AN_OBJECT, TOO_LONG, Problem
from shed_pipeline.core.sources.rows import Row, row_id_for
from shed_pipeline.core.sources.units import RawUnit

_record_json = json.JSONEncoder(ensure_ascii=False, default=str).encode  # one encoder for every row


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


# -- checks of the row's content --------------------------------------------------------------------


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
