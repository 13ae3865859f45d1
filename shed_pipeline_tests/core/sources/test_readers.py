"""Reading each format (JSON Lines, JSON, CSV, Parquet, compressed), text encodings, what a reader
finds while parsing, and files that cannot be read at all."""

import json

import polars as pl
import pytest

from shed_pipeline.core.sources import SourceError, row_id_for
from shed_pipeline.core.sources.checks import validate_units
from shed_pipeline.core.sources.load import read_units
from shed_pipeline.core.sources.readers.jsonl import jsonl_units
from shed_pipeline.core.sources.reasons import INVALID_UNICODE, INVALID_UTF8, MALFORMED_CSV, TOO_DEEP, TOO_LONG
from shed_pipeline.core.sources.units import SourceReport
from shed_pipeline_tests.core.sources.reading import MAP, read
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def test_json_csv_parquet_and_folder_sources_read_the_same_rows(tmp_path):
    rows = make_rows(12)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.json").write_text(json.dumps(rows[:4]))
    pl.DataFrame(rows[4:8]).write_csv(tmp_path / "f" / "b.csv")
    pl.DataFrame(rows[8:]).write_parquet(tmp_path / "f" / "c.parquet")
    (tmp_path / "f" / "notes.txt").write_text("ignored: not a data file")
    res = read(tmp_path / "f")
    assert not res.quarantine
    assert [r.row_id for r in res.rows] == [row_id_for(r["instruction"], r["input"], r["output"]) for r in rows]
    assert [r.task for r in res.rows] == [r["task"] for r in rows]


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
    with pytest.raises(SourceError) as exc:
        read_units(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


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
        (2, INVALID_UNICODE),
        (3, INVALID_UNICODE),
        (4, INVALID_UNICODE),
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
    assert [q.reason for q in read(tmp_path / "a.json").quarantine] == [INVALID_UNICODE]
    assert [q.reason for q in read(tmp_path / "b.json").quarantine] == [INVALID_UTF8, INVALID_UTF8]


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
    report = SourceReport()
    res = validate_units(read_units(tmp_path / name, report), MAP, 1000)
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
    report = SourceReport()
    res = validate_units(read_units(path, report), MAP, 1000)
    assert [(r.instruction, r.output) for r in res.rows] == [(r["instruction"], r["output"]) for r in rows]
    assert report.encodings == {str(path): encoding} and any(encoding.upper() in n for n in report.notes)


def test_utf16_without_a_byte_order_mark_fails_in_one_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("instruction,output\na,b\n".encode("utf-16-le"))
    with pytest.raises(SourceError) as exc:
        read_units(path)
    assert str(exc.value) == f"{path}: looks like UTF-16-LE text without a byte-order mark; save it as UTF-8"


def test_csv_rows_wider_than_the_header_are_malformed_csv_and_long_cells_are_too_long(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output\na,b,c\n" + "x" * 200_000 + ",y\nd,e\n")
    res = read(path, max_chars=1000)
    assert [(q.source_locator, q.reason, q.detail) for q in res.quarantine] == [
        (2, MALFORMED_CSV, "1 cell beyond the header"),
        (3, TOO_LONG, "200001 characters, limit 1000"),
    ]
    assert [r.instruction for r in res.rows] == ["d"]


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
    assert [(q.source_locator, q.reason) for q in res.quarantine] == [(2, TOO_DEEP), (3, TOO_DEEP)] and len(
        res.rows
    ) == 1


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
    units = list(jsonl_units(data, "d.jsonl", None))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(units) == 2000 and peak < len(data) * 1.6, (
        f"peak {peak / 1e6:.1f} MB for {len(data) / 1e6:.1f} MB of lines"
    )
