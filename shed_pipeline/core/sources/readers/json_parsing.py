"""Parsing JSON records, shared by the JSON and JSON Lines readers: a decoder that notices keys given
twice, the walk that finds what makes a parsed record unusable (nesting deeper than MAX_DEPTH, lone
surrogates, duplicate keys) and marks its unit, and the records of a whole-file JSON value (an array,
or the one list of a {"data": [...]}-style wrapper).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from shed_pipeline.core.sources.reasons import INVALID_UNICODE, MALFORMED_JSON, TOO_DEEP
from shed_pipeline.core.sources.units import BAD_BYTE, SURROGATE, RawUnit, SourceError, one_line

# Records nested deeper than this are quarantined (too_deep): instruction data is a few levels deep.
MAX_DEPTH = 200

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")  # a JSON escape that may decode to a lone surrogate
BLANK = " \t\r\n\x0b\x0c"  # what bytes.strip() strips: a line of only these is not a record
JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
# The list fields a whole-file object may wrap its records in, as published sets do.
WRAPPERS = ("data", "examples", "rows", "records")


class _DupKeys(dict):
    """An object in which a key appeared twice with different values (json keeps the last)."""

    key: str = ""


class Decoder:
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


def parses(line: str) -> bool:
    """Whether `line` is one JSON value."""
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _where(path: tuple, key_name: bool = False) -> str:
    if not path:
        return "the record"
    head, rest = path[0], "".join(f"[{p!r}]" for p in path[1:])
    return (
        f"a field name {head!r}"
        if key_name and len(path) == 1
        else f"field {head!r}{rest}" + (" (a key)" if key_name and len(path) > 1 else "")
    )


def inspect(unit: RawUnit, file_has_bad_bytes: bool, text: str | None = None) -> None:
    """Walk a parsed record (iteratively: it may be deep) for what makes it unusable: nesting deeper
    than MAX_DEPTH, lone surrogates (from \\ud800-style escapes, or undecodable bytes), duplicate
    keys. The first found is set on the unit (too_deep, invalid_utf8, invalid_unicode, malformed_json)."""
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
            m = SURROGATE.search(value)
            if m:
                bad_byte = bad_byte or bool(BAD_BYTE.search(value))
                surrogate = surrogate or (_where(path), m.group())
        elif isinstance(value, dict):
            if isinstance(value, _DupKeys) and dup is None:
                dup = (path, value.key)
            for k, v in reversed(list(value.items())):
                if isinstance(k, str) and (in_key := SURROGATE.search(k)):
                    bad_byte = bad_byte or bool(BAD_BYTE.search(k))
                    surrogate = surrogate or (_where((*path, k), key_name=True), in_key.group())
                stack.append((v, (*path, k)))
        elif isinstance(value, list):
            stack.extend((value[i], (*path, i)) for i in reversed(range(len(value))))
    if deep:
        what = JSON_TYPES.get(type(unit.payload), "a value")
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


def records_of(payload: Any, name: str) -> list:
    """The records of a parsed JSON file: an array, or the one list of a {"data": [...]}-style wrapper."""
    if isinstance(payload, dict):
        lists = [v for k, v in payload.items() if k in WRAPPERS and isinstance(v, list)]
        if len(lists) != 1:
            fields = ", ".join(repr(k) for k in list(payload)[:8]) or "none"
            raise SourceError(
                one_line(
                    f"{name}: expected a JSON array of records (or an object with one "
                    f"'data'/'examples'/'rows'/'records' list); found an object with fields {fields}"
                )
            )
        payload = lists[0]
    if not isinstance(payload, list):
        raise SourceError(
            f"{name}: expected a JSON array of records, found {JSON_TYPES.get(type(payload), type(payload).__name__)}"
        )
    return payload


def json_elements(records: list, text: str, dec: Decoder, name: str, encoding: str) -> Iterator[RawUnit]:
    """The units of a whole-file JSON value's records, each inspected when the text (`text`, what
    `dec` decoded) may hold something `inspect` finds."""
    has_bad = bool(BAD_BYTE.search(text))
    check = (
        has_bad or dec.dups > 0 or bool(SURROGATE_ESCAPE.search(text)) or text.count("[") + text.count("{") > MAX_DEPTH
    )
    for idx, item in enumerate(records):
        unit = RawUnit(name, idx, item, encoding=encoding)
        if check:
            inspect(unit, has_bad)
        yield unit
