import gzip
import json
import os
from collections import Counter

import polars as pl
import pytest

from shed_pipeline.core import records as R
from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl

MAP = R.FieldMapping()


def read(path, max_chars=10_000):
    return R.validate_units(R.read_units(path), MAP, max_chars)


def test_every_bad_kind_is_quarantined_with_its_reason_and_counts_balance(tmp_path):
    good = make_rows(20)
    path = write_jsonl(tmp_path / "d.jsonl", good + good[:2], BAD_LINES + [b"", b"   "])
    res = read(path)
    reasons = Counter(q.reason for q in res.quarantine)
    assert reasons == {
        R.MALFORMED_JSON: 1,
        R.MISSING_FIELD: 1,
        R.EMPTY_FIELD: 1,
        R.WRONG_TYPE: 1,
        R.INVALID_UTF8: 1,
        R.NOT_AN_OBJECT: 1,
        R.DUPLICATE: 2,
    }
    assert len(res.rows) == 20
    # 28 non-blank lines in the file: every one is either a row or quarantined.
    assert res.rows_in == 28 == len(res.rows) + len(res.quarantine)
    bad_utf8 = next(q for q in res.quarantine if q.reason == R.INVALID_UTF8)
    assert bad_utf8.source_locator == 20 + 2 + 5 and "\ufffd" in bad_utf8.excerpt
    dup = [q for q in res.quarantine if q.reason == R.DUPLICATE]
    assert dup[0].row_id == res.rows[0].row_id and "d.jsonl:1" in dup[0].detail


def test_rows_handed_to_a_sink_in_blocks_are_the_rows_kept_and_counts_still_balance(tmp_path):
    good = make_rows(9)
    a = write_jsonl(tmp_path / "a.jsonl", good[:5] + good[:1], BAD_LINES[:2])
    b = write_jsonl(tmp_path / "b.jsonl", good[5:], [])
    units = R.read_files([(a, "a.jsonl"), (b, "b.jsonl")])
    whole = R.validate_units(list(units), MAP, 10_000)
    blocks: list[list] = []
    res = R.validate_units(R.consumed(units), MAP, 10_000, sink=lambda rows: blocks.append(list(rows)), sink_rows=2)
    assert [len(b) for b in blocks] == [2, 2, 2, 2, 1] and res.rows == []
    assert [r for block in blocks for r in block] == whole.rows
    assert units == [None] * len(units)  # consumed: each record let go once validated
    assert res.rows_kept == 9 and res.rows_in == whole.rows_in == 9 + 3
    assert res.file_counts() == whole.file_counts() == {"a.jsonl": (5, 3), "b.jsonl": (4, 0)}
    assert res.quarantine == whole.quarantine and res.all_quarantined_files() == []


def test_too_long_rows_are_quarantined(tmp_path):
    rows = [{"instruction": "x" * 50, "output": "y"}, {"instruction": "short", "output": "y"}]
    res = read(write_jsonl(tmp_path / "d.jsonl", rows), max_chars=40)
    assert [q.reason for q in res.quarantine] == [R.TOO_LONG]
    assert [r.instruction for r in res.rows] == ["short"]


def test_row_ids_are_content_hashes_independent_of_position_and_task_text():
    a = R.row_id_for("Summarise.", "text one", "sum")
    assert a == R.row_id_for("Summarise.", "text one", "sum")
    assert a != R.row_id_for("Summarise.", "text two", "sum")  # same instruction, different row
    # Field boundaries matter: no collision by concatenation.
    assert R.row_id_for("ab", "c", "d") != R.row_id_for("a", "bc", "d")


def test_json_csv_parquet_and_folder_sources_read_the_same_rows(tmp_path):
    rows = make_rows(12)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.json").write_text(json.dumps(rows[:4]))
    pl.DataFrame(rows[4:8]).write_csv(tmp_path / "f" / "b.csv")
    pl.DataFrame(rows[8:]).write_parquet(tmp_path / "f" / "c.parquet")
    (tmp_path / "f" / "notes.txt").write_text("ignored: not a data file")
    res = read(tmp_path / "f")
    assert not res.quarantine
    assert [r.row_id for r in res.rows] == [R.row_id_for(r["instruction"], r["input"], r["output"]) for r in rows]
    assert [r.task for r in res.rows] == [r["task"] for r in rows]


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
    assert sorted(q.reason for q in res.quarantine) == [R.MISSING_FIELD, R.WRONG_TYPE]


def test_custom_field_mapping(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Say hi", "response": "hi", "category": "greet"}])
    res = R.validate_units(
        R.read_units(path), R.FieldMapping(instruction="prompt", output="response", task="category"), 1000
    )
    assert res.rows[0].instruction == "Say hi" and res.rows[0].output == "hi" and res.rows[0].task == "greet"


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.jsonl", None, "no such file"),
        ("bad.json", b'{"a": [1, 2', "not valid JSON"),
        ("scalar.json", b"42", "expected a JSON array"),
        ("bad.parquet", b"PAR1 this is not parquet", "not a readable Parquet"),
        ("data.xml", b"<x/>", "unsupported file type"),
    ],
)
def test_unreadable_files_fail_with_their_name_and_reason(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(R.SourceError) as exc:
        R.read_units(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(R.SourceError, match="holds no"):
        R.read_units(tmp_path)


def test_sample_is_deterministic_stratified_and_position_independent(tmp_path):
    rows = make_rows(400)
    units = R.read_units(write_jsonl(tmp_path / "a.jsonl", rows))
    s1 = R.sample_units(units, 40, seed=3, stratify="task")
    s2 = R.sample_units(units, 40, seed=3, stratify="task")
    assert [u.payload for u in s1] == [u.payload for u in s2]
    assert Counter(u.payload["task"] for u in s1) == {
        t: 10 for t in ("digits_to_words", "first_colour", "animal_class", "addition")
    }
    assert [u.payload for u in R.sample_units(units, 40, seed=4, stratify="task")] != [u.payload for u in s1]
    # Reordering the source does not change which records are chosen.
    units_rev = R.read_units(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    fp = lambda us: sorted(u.fingerprint() for u in us)  # noqa: E731
    assert fp(R.sample_units(units_rev, 40, seed=3, stratify="task")) == fp(s1)


def test_sample_gives_a_small_stratum_all_it_has_and_the_rest_to_others(tmp_path):
    rows = [{"instruction": "a", "input": str(i), "output": "x", "task": "small"} for i in range(3)]
    rows += [{"instruction": "b", "input": str(i), "output": "x", "task": "big"} for i in range(100)]
    units = R.read_units(write_jsonl(tmp_path / "a.jsonl", rows))
    s = R.sample_units(units, 20, seed=0, stratify="task")
    assert Counter(u.payload["task"] for u in s) == {"small": 3, "big": 17}


def test_split_depends_on_id_and_seed_only():
    ids = [R.row_id_for("i", str(n), "o") for n in range(2000)]
    splits = [R.split_of(r, 7, 0.1, 0.1) for r in ids]
    c = Counter(splits)
    assert 140 < c["validation"] < 260 and 140 < c["test"] < 260
    assert splits == [R.split_of(r, 7, 0.1, 0.1) for r in ids]
    assert splits != [R.split_of(r, 8, 0.1, 0.1) for r in ids]
    with pytest.raises(ValueError):
        R.split_of(ids[0], 0, 0.6, 0.5)


# -- bad input: what each kind becomes (the whole corpus is in test_bad_input_corpus) ------------


def test_lone_surrogate_escapes_are_invalid_unicode_and_nothing_stored_carries_one(tmp_path):
    lines = [
        b'{"instruction": "x \\ud800", "output": "y"}',
        b'{"instruction": "x", "output": "y", "\\udc80k": 1}',
        b'{"instruction": "x", "output": "y", "task": "\\udcff"}',
    ]
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}], lines)
    res = read(path)
    assert [(q.source_locator, q.reason) for q in res.quarantine] == [
        (2, R.INVALID_UNICODE),
        (3, R.INVALID_UNICODE),
        (4, R.INVALID_UNICODE),
    ]
    assert res.quarantine[0].detail == "record contains a lone surrogate escape (\\ud800) in field 'instruction'"
    assert "in a field name '\\udc80k'" in res.quarantine[1].detail and "in field 'task'" in res.quarantine[2].detail
    for q in res.quarantine:
        (q.detail + q.excerpt + q.source_file).encode("utf-8")  # no lone surrogate left: U+FFFD instead
    assert "\ufffd" in res.quarantine[0].excerpt
    # Raw bytes that are not UTF-8 stay invalid_utf8; in a .json file, escapes in U+DC80..U+DCFF are
    # invalid_utf8 only when the file had undecodable bytes.
    (tmp_path / "a.json").write_bytes(b'[{"instruction": "\\udc80", "output": "y"}]')
    (tmp_path / "b.json").write_bytes(
        b'[{"instruction": "\xff", "output": "y"}, {"instruction": "\\udc80", "output": "y"}]'
    )
    assert [q.reason for q in read(tmp_path / "a.json").quarantine] == [R.INVALID_UNICODE]
    assert [q.reason for q in read(tmp_path / "b.json").quarantine] == [R.INVALID_UTF8, R.INVALID_UTF8]


@pytest.mark.parametrize(
    "name,body",
    [
        ("d.jsonl", b'{"instruction": "a", "output": "b"}\n'),
        ("d.json", b'[{"instruction": "a", "output": "b"}]'),
        ("d.csv", b"instruction,output\na,b\n"),
    ],
)
def test_a_utf8_byte_order_mark_is_read_as_such(tmp_path, name, body):
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + body)
    report = R.SourceReport()
    res = R.validate_units(R.read_units(tmp_path / name, report), MAP, 1000)
    assert not res.quarantine and [(r.instruction, r.output) for r in res.rows] == [("a", "b")]
    assert report.encodings == {str(tmp_path / name): "utf-8-sig"}


@pytest.mark.parametrize(
    "encoding,bom",
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
    ],
)
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded_and_reported(tmp_path, encoding, bom):
    rows = [{"instruction": "Name the caf\u00e9.", "output": "\u4e2d \U0001f600"}, {"instruction": "b", "output": "c"}]
    path = tmp_path / "d.jsonl"
    path.write_bytes(bom + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows).encode(encoding))
    report = R.SourceReport()
    res = R.validate_units(R.read_units(path, report), MAP, 1000)
    assert [(r.instruction, r.output) for r in res.rows] == [(r["instruction"], r["output"]) for r in rows]
    assert report.encodings == {str(path): encoding} and any(encoding.upper() in n for n in report.notes)


def test_utf16_without_a_byte_order_mark_fails_in_one_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("instruction,output\na,b\n".encode("utf-16-le"))
    with pytest.raises(R.SourceError) as exc:
        R.read_units(path)
    assert str(exc.value) == f"{path}: looks like UTF-16-LE text without a byte-order mark; save it as UTF-8"


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


def test_csv_rows_wider_than_the_header_are_malformed_csv_and_long_cells_are_too_long(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output\na,b,c\n" + "x" * 200_000 + ",y\nd,e\n")
    res = read(path, max_chars=1000)
    assert [(q.source_locator, q.reason, q.detail) for q in res.quarantine] == [
        (2, R.MALFORMED_CSV, "1 cell beyond the header"),
        (3, R.TOO_LONG, "200001 characters, limit 1000"),
    ]
    assert [r.instruction for r in res.rows] == ["d"]


def test_source_kind_and_the_one_skip_rule(tmp_path):
    assert (
        R.source_kind("a/b/Data.JSONL.GZ") == ("jsonl", "gzip")
        and R.source_kind("x.csv.zst") == ("csv", "zstd")
        and R.source_kind("x.parquet") == ("parquet", None)
    )
    assert R.source_kind("x.parquet.gz") is None and R.source_kind("x.txt") is None and R.source_kind("x.gz") is None
    assert R.why_skipped("sub/.cache/x.jsonl").startswith("hidden") and R.why_skipped(".x.jsonl").startswith("hidden")
    assert (
        R.why_skipped("sub/x.parquet.gz").startswith("compressed Parquet") and R.why_skipped("sub/x.jsonl.xz") is None
    )


def test_a_folder_reads_compressed_files_and_reports_every_entry_it_does_not_read(tmp_path):
    src = tmp_path / "src"
    (src / "sub" / ".cache").mkdir(parents=True)
    rows = make_rows(4)
    write_jsonl(src / "a.jsonl", rows[:1])
    (src / "b.jsonl.gz").write_bytes(gzip.compress(json.dumps(rows[1]).encode() + b"\n"))
    write_jsonl(src / "sub" / ".cache" / "c.jsonl", rows[2:3])  # hidden: read before, not now
    write_jsonl(src / ".d.jsonl", rows[3:])
    os.mkfifo(src / "p.jsonl")
    os.symlink("loop", src / "loop")
    os.symlink("..", src / "up")
    report = R.SourceReport()
    res = R.validate_units(R.read_units(src, report), MAP, 1000)
    assert [r.source_file for r in res.rows] == [str(src / "a.jsonl"), str(src / "b.jsonl.gz")]
    assert [(n[len(str(src)) + 1 :], w.split(" (")[0]) for n, w in report.skipped] == [
        (".d.jsonl", "hidden"),
        ("loop", "symbolic link loop"),
        ("p.jsonl", "not a regular file"),
        ("sub/.cache/", "hidden"),
        ("up", "symbolic link to a folder"),
    ]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: os.mkfifo(p), "not a regular file (a FIFO)"),
        (lambda p: os.symlink(p.name, p), "symbolic link loop"),
        (lambda p: os.symlink("gone.jsonl", p), "broken symbolic link (points to gone.jsonl)"),
    ],
)
def test_a_special_file_as_the_source_fails_in_one_line(tmp_path, make, message):
    path = tmp_path / "s.jsonl"
    make(path)
    with pytest.raises(R.SourceError) as exc:
        R.list_source_files(path)
    assert str(exc.value) == f"{path}: {message}"


def test_deep_nesting_is_quarantined_not_a_crash(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"instruction": "a", "output": "b"}],
        [
            b"[" * 100_000 + b"]" * 100_000,
            json.dumps({"instruction": "x", "output": "y", "m": json.loads("[" * 300 + "]" * 300)}).encode(),
        ],
    )
    res = read(path)
    assert [(q.source_locator, q.reason) for q in res.quarantine] == [(2, R.TOO_DEEP), (3, R.TOO_DEEP)] and len(
        res.rows
    ) == 1


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
    assert chat.row_id == R.row_id_for(chat.instruction, "", "Madrid")
    assert chat.messages == json.dumps(
        [{"role": t["role"], "content": t["content"]} for t in turns[:5] if t["role"] != "tool"],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert chat.turns_dropped == 2 and res.turns_after_last_assistant == 1 and res.turns_other_roles == 1
    assert alpaca.messages is None and alpaca.turns_dropped == 0


def test_skipped_lines_list_the_first_entries_and_count_the_rest_by_reason():
    skipped = [(f"src/.f{i}", "hidden (a name in its path starts with '.')") for i in range(30)] + [
        ("src/x.txt", "unsupported file type '.txt'")
    ]
    lines = R.skipped_lines(skipped, limit=2)
    assert lines == [
        "src/.f0: not read: hidden (a name in its path starts with '.')",
        "src/.f1: not read: hidden (a name in its path starts with '.')",
        "and 29 more not read: hidden 28, unsupported file type '.txt' 1",
    ]
    entry = R.QuarantineEntry("f.jsonl", 1, R.MALFORMED_JSON, "Expecting value at column 1")
    assert (
        R.all_quarantined_message("f.jsonl", [entry])
        == "all 1 row of f.jsonl quarantined: malformed_json 1 (Expecting value at column 1)"
    )


def test_a_one_line_jsonl_record_with_a_list_field_named_like_a_wrapper_is_a_record(tmp_path):
    """`examples` / `data` lists are wrappers only in a whole-file JSON value, never on one JSONL line."""
    rec = {
        "instruction": "Sort the list.",
        "input": "3 1 2",
        "output": "1 2 3",
        "examples": [{"in": "2 1", "out": "1 2"}, {"in": "b a", "out": "a b"}],
    }
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(rec) + "\n")
    res = read(one)
    assert not res.quarantine and [r.output for r in res.rows] == ["1 2 3"]
    pretty = tmp_path / "pretty.jsonl"  # the same shape spread over lines is a wrapper of two records
    pretty.write_text(
        json.dumps({"examples": [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]}, indent=2)
    )
    assert [r.output for r in read(pretty).rows] == ["b", "d"]


def test_large_jsonl_files_are_decoded_line_by_line(tmp_path):
    """A UTF-8 JSONL file is never decoded into one string: one emoji would make all of it 4 bytes
    per character (10 MB of lines: 40 MB more at the peak)."""
    import tracemalloc

    rows = [{"instruction": f"q{i} " + "x" * 5000, "output": "a"} for i in range(2000)]
    rows[0]["output"] = "\U0001f600"
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    tracemalloc.start()
    units = list(R._jsonl_units(data, "d.jsonl", None))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(units) == 2000 and peak < len(data) * 1.6, (
        f"peak {peak / 1e6:.1f} MB for {len(data) / 1e6:.1f} MB of lines"
    )
