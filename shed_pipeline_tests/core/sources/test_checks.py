"""Validation: every kind of bad record quarantined with its reason, counts that balance, chat
records, field mappings, and the lines that say why a whole file was quarantined."""

import json
from collections import Counter

from shed_pipeline.core.sources import FieldMapping, row_id_for
from shed_pipeline.core.sources.checks import consumed, validate_units
from shed_pipeline.core.sources.load import read_units
from shed_pipeline.core.sources.readers import read_files
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
from shed_pipeline_tests.core.sources.reading import MAP, read
from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl


def test_every_bad_kind_is_quarantined_with_its_reason_and_counts_balance(tmp_path):
    good = make_rows(20)
    path = write_jsonl(tmp_path / "d.jsonl", good + good[:2], BAD_LINES + [b"", b"   "])
    res = read(path)
    reasons = Counter(q.reason for q in res.quarantine)
    assert reasons == {
        MALFORMED_JSON: 1,
        MISSING_FIELD: 1,
        EMPTY_FIELD: 1,
        WRONG_TYPE: 1,
        INVALID_UTF8: 1,
        NOT_AN_OBJECT: 1,
        DUPLICATE: 2,
    }
    assert len(res.rows) == 20
    # 28 non-blank lines in the file: every one is either a row or quarantined.
    assert res.rows_in == 28 == len(res.rows) + len(res.quarantine)
    bad_utf8 = next(q for q in res.quarantine if q.reason == INVALID_UTF8)
    assert bad_utf8.source_locator == 20 + 2 + 5 and "\ufffd" in bad_utf8.excerpt
    dup = [q for q in res.quarantine if q.reason == DUPLICATE]
    assert dup[0].row_id == res.rows[0].row_id and "d.jsonl:1" in dup[0].detail


def test_rows_handed_to_a_sink_in_blocks_are_the_rows_kept_and_counts_still_balance(tmp_path):
    good = make_rows(9)
    a = write_jsonl(tmp_path / "a.jsonl", good[:5] + good[:1], BAD_LINES[:2])
    b = write_jsonl(tmp_path / "b.jsonl", good[5:], [])
    units = read_files([(a, "a.jsonl"), (b, "b.jsonl")])
    whole = validate_units(list(units), MAP, 10_000)
    blocks: list[list] = []
    res = validate_units(consumed(units), MAP, 10_000, sink=lambda rows: blocks.append(list(rows)), sink_rows=2)
    assert [len(b) for b in blocks] == [2, 2, 2, 2, 1] and res.rows == []
    assert [r for block in blocks for r in block] == whole.rows
    assert units == [None] * len(units)  # consumed: each record let go once validated
    assert res.rows_kept == 9 and res.rows_in == whole.rows_in == 9 + 3
    assert res.file_counts() == whole.file_counts() == {"a.jsonl": (5, 3), "b.jsonl": (4, 0)}
    assert res.quarantine == whole.quarantine and res.all_quarantined_files() == []


def test_too_long_rows_are_quarantined(tmp_path):
    rows = [{"instruction": "x" * 50, "output": "y"}, {"instruction": "short", "output": "y"}]
    res = read(write_jsonl(tmp_path / "d.jsonl", rows), max_chars=40)
    assert [q.reason for q in res.quarantine] == [TOO_LONG]
    assert [r.instruction for r in res.rows] == ["short"]


def test_chat_messages_records(tmp_path):
    recs = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"},
            ]
        },
        {"messages": [{"role": "user", "content": "Hi"}]},  # no assistant turn
        {"messages": "not a list"},
    ]
    res = read(write_jsonl(tmp_path / "chat.jsonl", recs))
    assert len(res.rows) == 1
    row = res.rows[0]
    assert row.output == "Paris" and "Capital of France?" in row.instruction and "Be brief." in row.instruction
    assert json.loads(row.record) == recs[0]  # the record keeps its own schema
    assert sorted(q.reason for q in res.quarantine) == [MISSING_FIELD, WRONG_TYPE]


def test_custom_field_mapping(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Say hi", "response": "hi", "category": "greet"}])
    res = validate_units(read_units(path), FieldMapping(instruction="prompt", output="response", task="category"), 1000)
    assert res.rows[0].instruction == "Say hi" and res.rows[0].output == "hi" and res.rows[0].task == "greet"


def test_missing_field_names_the_fields_the_record_has_and_a_wholly_quarantined_file_says_why(tmp_path):
    recs = [{"\ufeffinstruction": f"q{i}", "input": "", "output": "a"} for i in range(1200)] + [
        {"instruction": 5, "output": "x"}
    ]
    res = read(write_jsonl(tmp_path / "d.jsonl", recs))
    detail = "field 'instruction' is missing; record fields: '\\ufeffinstruction', 'input', 'output'"
    assert res.quarantine[0].detail == detail
    line = f"all 1,201 rows of {tmp_path / 'd.jsonl'} quarantined: missing_field 1,200 ({detail}), wrong_type 1"
    assert res.all_quarantined_files() == [line]
    assert res.all_quarantined_message("SRC") == line  # one file: named itself
    write_jsonl(tmp_path / "two" / "a.jsonl", recs[:3])
    write_jsonl(tmp_path / "two" / "b.jsonl", recs[-1:])
    both = read(tmp_path / "two")
    assert (
        both.all_quarantined_message("SRC")
        == f"all 4 rows of SRC (2 files) quarantined: missing_field 3 ({detail}), wrong_type 1"
    )
    many = {f"f{i}": i for i in range(12)}
    res = read(write_jsonl(tmp_path / "e.jsonl", [many, {"instruction": "ok", "output": "y"}]))
    assert (
        res.quarantine[0].detail.endswith("'f6', 'f7', ... (4 more)")
        and res.all_quarantined_files() == []
        and res.all_quarantined_message("SRC") is None
    )


def test_chat_rows_keep_their_prompt_turns_and_count_the_turns_dropped(tmp_path):
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "tool", "content": "lookup: Paris"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And Spain?"},
        {"role": "assistant", "content": "Madrid"},
        {"role": "user", "content": "Thanks"},
    ]
    res = read(write_jsonl(tmp_path / "chat.jsonl", [{"messages": turns}, {"instruction": "i", "output": "o"}]))
    chat, alpaca = res.rows
    # The instruction (so the row id) is what it always was: the kept turns flattened.
    assert (
        chat.instruction == "system: Be brief.\n\nuser: Capital of France?\n\nassistant: Paris\n\nuser: And Spain?"
        and chat.output == "Madrid"
    )
    assert chat.row_id == row_id_for(chat.instruction, "", "Madrid")
    assert chat.messages == json.dumps(
        [{"role": t["role"], "content": t["content"]} for t in turns[:5] if t["role"] != "tool"],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert chat.turns_dropped == 2 and res.turns_after_last_assistant == 1 and res.turns_other_roles == 1
    assert alpaca.messages is None and alpaca.turns_dropped == 0
