"""A record's instruction, input and output: named fields (`alpaca_fields`) or a chat's turns
(`chat_fields`), as `FieldMapping` says; a `Problem` when they are missing, null, empty or of the
wrong type (the checks of the mapped fields that `checks.validate_units` runs).

Chat records (`FieldMapping.messages`): the last assistant turn is the output; the system, user and
assistant turns before it are the prompt. `instruction` is those turns flattened ("role: content"
joined by blank lines, or the bare content of a single turn) and `Row.messages` keeps them as a JSON
list of {role, content}. Turns after the last assistant turn, and turns of any other role before it
(`tool`, `function`, ...), are not used: `Row.turns_dropped` counts them per row and
`ReadResult.turns_after_last_assistant` / `turns_other_roles` over the rows read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from shed_pipeline.core.sources.reasons import EMPTY_FIELD, MISSING_FIELD, WRONG_TYPE, Problem

CHAT_ROLES = ("system", "user", "assistant")


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
