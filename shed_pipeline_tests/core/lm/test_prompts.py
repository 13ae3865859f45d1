"""Rows as prompts: Alpaca rows and chat rows' turns, with and without a chat template."""

import json

import polars as pl
import pytest

from shed_pipeline.core import lm
from shed_pipeline_tests.core.lm.chat_templates import CHAT, STRICT


def tokenizer_with(tiny_dir, template):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    tok.chat_template = template
    return tok


CONVERSATION = [
    {"role": "user", "content": "what colour is the sky"},
    {"role": "assistant", "content": "blue"},
    {"role": "user", "content": "and paris"},
]


def prompt_text_before_messages(tok, instruction, input_text=""):
    """`lm.prompt_text` as it was before chat rows kept their turns: the regression oracle."""
    user = f"{instruction}\n\n{input_text}" if input_text else instruction
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return user + "\n"


def test_a_chat_row_keeps_its_turns_through_the_chat_template(tiny_dir):
    tok = tokenizer_with(tiny_dir, CHAT)
    text = lm.prompt_text(tok, "flattened instruction, unused", "", json.dumps(CONVERSATION))
    assert text == "<|user|>what colour is the sky\n<|assistant|>blue\n<|user|>and paris\n<|assistant|>"
    assert lm.prompt_text(tok, "", "", CONVERSATION) == text  # the parsed list works too
    system = [{"role": "system", "content": "Be brief."}, *CONVERSATION]
    assert lm.prompt_text(tok, "", "", json.dumps(system, ensure_ascii=False)).startswith(
        "<|system|>Be brief.\n<|user|>"
    )


def test_alpaca_rows_render_byte_for_byte_as_before(tiny_dir, tiny):
    rows = [("the capital of france is", ""), ("what colour", "the sky"), ("a b\n\nc", "d")]
    for tok in (tokenizer_with(tiny_dir, CHAT), tiny[1]):  # with a chat template and without
        want = [prompt_text_before_messages(tok, i, x) for i, x in rows]
        assert [lm.prompt_text(tok, i, x) for i, x in rows] == want
        assert (
            lm.prompt_texts(tok, [i for i, _ in rows], [x for _, x in rows]) == want
        )  # a frame without a messages column
        assert (
            lm.prompt_texts(tok, [i for i, _ in rows], [x for _, x in rows], [None, None, None]) == want
        )  # null: an Alpaca row
        assert lm.prompt_text(tok, "the capital of france is", "", "[]") == want[0]  # no turns: an Alpaca row


def test_a_column_mixes_chat_and_alpaca_rows_and_frames_without_it_are_alpaca(tiny_dir):
    tok = tokenizer_with(tiny_dir, CHAT)
    frame = pl.DataFrame(
        {
            "instruction": ["user: what colour is the sky\n\nassistant: blue\n\nuser: and paris", "what colour"],
            "input": ["", "the sky"],
            "messages": [json.dumps(CONVERSATION), None],
        }
    )
    got = lm.prompt_texts(tok, frame["instruction"], frame["input"], lm.messages_column(frame))
    assert got == [
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION)),
        "<|user|>what colour\n\nthe sky\n<|assistant|>",
    ]
    old = frame.drop("messages")
    assert lm.messages_column(old) is None
    assert lm.prompt_texts(tok, old["instruction"], old["input"], lm.messages_column(old))[1] == got[1]


def test_without_a_chat_template_turns_are_plain_text_like_the_flattened_instruction(tiny):
    tok = tiny[1]
    assert not getattr(tok, "chat_template", None)
    assert (
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION))
        == "user: what colour is the sky\n\nassistant: blue\n\nuser: and paris\n"
    )
    assert (
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION[:1])) == "what colour is the sky\n"
    )  # one turn: its content, as the reader flattens it


def test_turns_the_template_refuses_become_one_user_turn_logged_once(tiny_dir):
    tok = tokenizer_with(tiny_dir, STRICT)
    starts_with_assistant = json.dumps(
        [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "what colour"}]
    )
    lines = []
    got = lm.prompt_texts(
        tok,
        ["x", "y", "z"],
        ["", "", ""],
        [starts_with_assistant, json.dumps(CONVERSATION), starts_with_assistant],
        lines.append,
    )
    assert got[0] == got[2] == "<|user|>assistant: hello\n\nuser: what colour\n<|assistant|>"
    assert (
        got[1] == "<|user|>what colour is the sky\n<|assistant|>blue\n<|user|>and paris\n<|assistant|>"
    )  # accepted: as turns
    assert len(lines) == 1 and "refused the turns of 2 of 3 chat rows" in lines[0]
    with pytest.raises(ValueError, match="list of"):
        lm.prompt_text(tok, "x", "", "not json")
    with pytest.raises(ValueError, match="list of"):
        lm.prompt_text(tok, "x", "", json.dumps([{"role": "user"}]))
