"""Prompts: a row (an Alpaca instruction and input, or a chat row's turns) as the text the model
is asked, through its chat template when it has one; and each row's identity as a prompt, for cache
keys."""

from __future__ import annotations

import hashlib
import json

from shed_pipeline.core.progress import Log, silent

# Bump when `prompt_text` renders a row it rendered before differently: cached utility values carry
# it. (Chat rows prompted as their turns kept v1: Alpaca prompts did not change, and a chat row's
# cache identity includes its turns, `prompt_keys`, so no value of a flattened chat prompt is reused.)
PROMPT_FORMAT = "chat_template/v1"


def prompt_text(tok, instruction: str, input_text: str = "", messages=None) -> str:
    """The prompt a row asks, through the model's chat template when it has one (instruction-tuned
    models expect it), else as plain text.

    An Alpaca row (`messages` None): its instruction and input as one user turn. A chat row
    (`messages`: the JSON list of the prompt turns, {role, content}, before the last assistant
    turn): the turns as they are; if the template refuses them (turns that do not alternate, an
    assistant turn first, ...), their plain rendering ("role: content" per turn) as one user turn."""
    return _prompt(tok, instruction, input_text, messages)[0]


def prompt_texts(tok, instructions, inputs, messages=None, log: Log = silent) -> list[str]:
    """`prompt_text` of each row: `messages` is the frame's messages column (None in it: an Alpaca
    row), or None for a frame without one (`messages_column`). Chat rows the template refused are
    counted and logged once."""
    instructions, inputs = list(instructions), list(inputs)
    msgs = [None] * len(instructions) if messages is None else list(messages)
    if not len(instructions) == len(inputs) == len(msgs):
        raise ValueError("instructions, inputs and messages differ in length")
    out, refused = [], 0
    for i, x, m in zip(instructions, inputs, msgs, strict=True):
        text, fell_back = _prompt(tok, i, x, m)
        out.append(text)
        refused += fell_back
    if refused:
        log(
            f"prompts: the chat template refused the turns of {refused} of {sum(m is not None for m in msgs)} "
            "chat rows (e.g. roles that do not alternate); each is given as one user turn instead"
        )
    return out


def messages_column(frame):
    """A frame's `messages` column as a list, or None when it has none (frames written before it)."""
    return frame["messages"].to_list() if "messages" in frame.columns else None


def prompt_keys(row_ids, messages=None) -> list[str]:
    """Each row's identity as a prompt, for cache keys: its row id, and for a chat row a digest of
    its turns too (the row id hashes the flattened instruction, which a frame without the messages
    column prompts as one turn, and which two conversations can share)."""
    row_ids = list(row_ids)
    msgs = [None] * len(row_ids) if messages is None else list(messages)
    return [
        rid if m is None else f"{rid}:turns-{hashlib.sha256(str(m).encode()).hexdigest()[:12]}"
        for rid, m in zip(row_ids, msgs, strict=True)
    ]


def parse_messages(messages) -> list[dict] | None:
    """The prompt turns of a chat row (its JSON list, or the list itself); None for an Alpaca row."""
    if messages is None:
        return None
    try:
        turns = json.loads(messages) if isinstance(messages, str) else messages
    except ValueError:
        turns = None
    if not isinstance(turns, list) or not all(
        isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str) for t in turns
    ):
        raise ValueError(f"messages must be a JSON list of {{role, content}} turns, got {str(messages)[:80]!r}")
    return [{"role": t["role"], "content": t["content"]} for t in turns] or None


def plain_turns(turns: list[dict]) -> str:
    """Turns as plain text, the way the reader flattens them into the instruction: "role: content"
    per turn, blank lines between (a single turn: its content alone)."""
    return "\n\n".join(f"{t['role']}: {t['content']}" if len(turns) > 1 else t["content"] for t in turns)


def _prompt(tok, instruction: str, input_text: str, messages) -> tuple[str, bool]:
    """(prompt text, whether the chat template refused the row's turns)."""
    turns = parse_messages(messages)
    templated = bool(getattr(tok, "chat_template", None))
    refused = False
    if turns is None:
        user = f"{instruction}\n\n{input_text}" if input_text else instruction
    else:
        if templated:
            try:
                return tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True), False
            except Exception:  # noqa: BLE001 (templates raise what they like: jinja2 errors, ValueError, ...)
                refused = True
        user = plain_turns(turns)
    if templated:
        return tok.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        ), refused
    return user + "\n", refused


def choice_items(tok, raw) -> list:
    """`benchmarks.load_choice_items` tuples (prefix, input, choices, answer) as ChoiceItems whose
    prompt is `prompt_text` of the prefix and input."""
    from shed_pipeline.core.evaluation.benchmarks import ChoiceItem

    return [ChoiceItem(prompt_text(tok, prefix, inp), tuple(choices), answer) for prefix, inp, choices, answer in raw]
