"""Bad input a real user feeds the pipeline, one case each, with exactly what `load_source` must make of it.

A case builds its file(s) under a fresh folder and names the source to load. Its outcome is either
the rows it yields and the (file, locator, reason) of every unit it quarantines, in source order,
or the one-line `SourceError` (which file it starts with, what it says). File names in a case are
relative to the case's folder. To add a case: append a `Case` to CASES; the test runs every one
(shed_pipeline_tests/core/sources/test_bad_input_corpus.py, with MAX_CHARS as the length limit).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
import pyarrow as pa

from shed_pipeline.core.sources import reasons as R
from shed_pipeline.core.sources.readers.json_parsing import MAX_DEPTH

MAX_CHARS = 500  # the limit the corpus runs with: the too_long cases exceed it

Builder = Callable[[Path], Path]  # makes the input under a folder; returns the source to load
Entry = bytes | Callable[[Path], None]  # a file's bytes, or what makes the entry at a path (a FIFO, a link)


@dataclass(frozen=True)
class Case:
    name: str
    build: Builder
    rows: int = 0  # rows that come out
    quarantined: tuple[tuple[str, int, str], ...] = ()  # (file, locator, reason) of each quarantined unit, in order
    error: tuple[str, str] | None = None  # (file the SourceError starts with, text it contains)
    skipped: tuple[tuple[str, str], ...] = ()  # (name, start of why) of every entry not read, sorted
    encodings: tuple[tuple[str, str], ...] = ()  # (file, encoding) of files not in plain UTF-8
    notes: tuple[str, ...] = ()  # text each of some note contains
    details: tuple[str, ...] = ()  # text each of some quarantine detail contains
    check: Callable[[object, Path], None] | None = None  # more assertions: (LoadedSource, case folder)


# -- building blocks -----------------------------------------------------------------------------


def good(i: int) -> dict:
    return {"instruction": f"Add {i} and {i + 1}.", "input": "", "output": str(2 * i + 1)}


def line(obj: object) -> bytes:
    return json.dumps(obj).encode()


def lines(*items: object) -> bytes:
    """JSONL: dicts and lists become JSON lines, bytes are written as they are."""
    return b"".join((item if isinstance(item, bytes) else line(item)) + b"\n" for item in items)


def one(name: str, content: bytes) -> Builder:
    def build(root: Path) -> Path:
        path = root / name
        path.write_bytes(content)
        return path

    return build


def tree(entries: dict[str, Entry], source: str = "src") -> Builder:
    """A folder `source` holding `entries` (paths below it -> bytes or a maker); returns the folder."""

    def build(root: Path) -> Path:
        top = root / source
        top.mkdir(parents=True, exist_ok=True)
        for rel, entry in entries.items():
            path = top / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(entry, bytes):
                path.write_bytes(entry)
            else:
                entry(path)
        return top

    return build


def entry(name: str, made: Callable[[Path], None]) -> Builder:
    """A single special entry (FIFO, link) as the source itself."""

    def build(root: Path) -> Path:
        made(root / name)
        return root / name

    return build


def fifo(path: Path) -> None:
    os.mkfifo(path)


def link(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data)
    if how == "bz2":
        return bz2.compress(data)
    if how == "xz":
        return lzma.compress(data)
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, how) as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def csv_text(*rows: str, newline: str = "\n") -> bytes:
    return (newline.join(rows) + newline).encode()


GOOD3 = lines(good(0), good(1), good(2))
CSV_GOOD = csv_text("instruction,input,output", "Add 0 and 1.,,1", "Add 1 and 2.,,3")
DEEP = b"[" * 100_000 + b"]" * 100_000  # past any recursion limit
SEMI_DEEP = {
    "instruction": "x",
    "output": "y",
    "meta": json.loads("[" * 300 + "]" * 300),
}  # parses, deeper than MAX_DEPTH
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.jsonl")  # a name that is not UTF-8 (os.fsdecode carries \xe9 as a surrogate)
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "name": "planner"},
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "Thanks!"},
    ]
}


def _check_chat(loaded, root: Path) -> None:
    row = loaded.rows.row(0, named=True)
    assert row["instruction"] == "system: Be brief.\n\nuser: Weather?\n\nassistant: " and row["output"] == "Sunny."
    assert json.loads(row["messages"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": ""},
    ]
    assert row["messages"] == json.dumps(json.loads(row["messages"]), ensure_ascii=False, separators=(",", ":"))
    assert (
        row["turns_dropped"] == 2
        and loaded.turns_dropped_after_last_assistant == 1
        and loaded.turns_dropped_other_roles == 1
    )
    alpaca = loaded.rows.row(1, named=True)
    assert alpaca["messages"] is None and alpaca["turns_dropped"] == 0


def _check_tasks(loaded, root: Path) -> None:
    # The task is an optional label: any JSON value, as its str() (what stratified sampling groups by); null is none.
    assert loaded.rows["task"].to_list() == ["7", "2.5", "True", None, "{'id': 1}", None]


def _check_all_quarantined(loaded, root: Path) -> None:
    name = str(root / "d.jsonl")
    assert loaded.result.all_quarantined_files() == [
        f"all 3 rows of {name} quarantined: missing_field 2 (field 'instruction' is missing; record fields: "
        "'\\ufeffinstruction', 'input', 'output'), wrong_type 1"
    ]
    assert loaded.result.all_quarantined_message("SRC") == (
        f"all 3 rows of {name} quarantined: missing_field 2 (field 'instruction' is missing; record fields: "
        "'\\ufeffinstruction', 'input', 'output'), wrong_type 1"
    )


def _check_one_file_all_quarantined(loaded, root: Path) -> None:
    assert loaded.result.all_quarantined_files() == [
        f"all 2 rows of {root / 'src' / 'b.csv'} quarantined: malformed_csv 2 (1 cell beyond the header)"
    ]
    assert loaded.result.all_quarantined_message("SRC") is None  # a.jsonl has rows


def _check_non_utf8_name(loaded, root: Path) -> None:
    shown = str(root / "src" / "caf\\xe9.jsonl")
    assert loaded.rows["source_file"].to_list() == [shown] and loaded.quarantine["source_file"].to_list() == [shown]
    assert list(loaded.file_units) == [shown]


def _check_nan(loaded, root: Path) -> None:
    assert (
        json.loads(loaded.rows["record"][0])["score"] != json.loads(loaded.rows["record"][0])["score"]
    )  # NaN, kept as Python's json writes it


def _check_surrogate_pair(loaded, root: Path) -> None:
    assert loaded.rows["output"].to_list() == ["\U0001f600"]  # a proper pair is one character, not a lone surrogate
    assert all("\ufffd" in e for e in loaded.quarantine["excerpt"].to_list())


# -- the corpus ----------------------------------------------------------------------------------

CASES: list[Case] = [
    # The reasons that existed before this corpus.
    Case(
        "malformed_json",
        one("d.jsonl", lines(good(0), b'{"instruction": "broken", "output": ', good(1))),
        2,
        (("d.jsonl", 2, R.MALFORMED_JSON),),
    ),
    Case(
        "missing_field",
        one("d.jsonl", lines(good(0), {"input": "x", "output": "y"})),
        1,
        (("d.jsonl", 2, R.MISSING_FIELD),),
        details=("field 'instruction' is missing; record fields: 'input', 'output'",),
    ),
    Case(
        "empty_field",
        one("d.jsonl", lines({"instruction": "  \n", "output": "y"}, {"instruction": "x", "output": ""})),
        0,
        (("d.jsonl", 1, R.EMPTY_FIELD), ("d.jsonl", 2, R.EMPTY_FIELD)),
    ),
    Case(
        "wrong_type",
        one(
            "d.jsonl",
            lines(
                {"instruction": 42, "output": "y"},
                {"instruction": "x", "output": ["a"]},
                {"instruction": "x", "input": {"k": 1}, "output": "y"},
            ),
        ),
        0,
        tuple(("d.jsonl", i, R.WRONG_TYPE) for i in (1, 2, 3)),
    ),
    Case(
        "invalid_utf8",
        one("d.jsonl", lines(good(0), b'{"instruction": "bad bytes \xff\xfe", "output": "x"}')),
        1,
        (("d.jsonl", 2, R.INVALID_UTF8),),
        details=("not valid UTF-8",),
    ),
    Case(
        "windows_1252_csv",
        one("d.csv", b"instruction,output\nSay caf\xe9.,ok\nSay tea.,ok\n"),
        1,
        (("d.csv", 2, R.INVALID_UTF8),),
    ),
    Case(
        "not_an_object",
        one("d.jsonl", lines(["a", "list"], b'"a string"', b"42", b"null", good(0))),
        1,
        tuple(("d.jsonl", i, R.NOT_AN_OBJECT) for i in (1, 2, 3, 4)),
    ),
    Case(
        "too_long",
        one("d.jsonl", lines({"instruction": "x" * 600, "output": "y"}, good(0))),
        1,
        (("d.jsonl", 1, R.TOO_LONG),),
        details=("601 characters, limit 500",),
    ),
    Case("duplicate", one("d.jsonl", lines(good(0), good(1), good(0))), 2, (("d.jsonl", 3, R.DUPLICATE),)),
    Case(
        "duplicate_across_files",
        tree({"a.jsonl": lines(good(0)), "b.json": json.dumps([good(0), good(1)]).encode()}),
        2,
        (("src/b.json", 0, R.DUPLICATE),),
    ),
    Case(
        "null_fields",
        one("d.jsonl", lines({"instruction": None, "output": "y"}, {"instruction": "x", "input": None, "output": "y"})),
        1,
        (("d.jsonl", 1, R.MISSING_FIELD),),
        details=("field 'instruction' is null",),
    ),
    Case(
        "numbers_as_task",
        one(
            "d.jsonl",
            lines(
                {**good(0), "task": 7},
                {**good(1), "task": 2.5},
                {**good(2), "task": True},
                good(3),
                {**good(4), "task": {"id": 1}},
                {**good(5), "task": None},
            ),
        ),
        6,
        check=_check_tasks,
    ),
    Case(
        "nan_and_infinity",
        one(
            "d.jsonl",
            lines(b'{"instruction": "x", "output": "y", "score": NaN}', b'{"instruction": Infinity, "output": "y"}'),
        ),
        1,
        (("d.jsonl", 2, R.WRONG_TYPE),),
        check=_check_nan,
    ),
    Case(
        "duplicate_keys",
        one(
            "d.jsonl",
            lines(
                b'{"instruction": "a", "instruction": "b", "output": "c"}',
                b'{"instruction": "a", "instruction": "a", "output": "c"}',
                b'{"messages": [{"role": "user", "content": "q", "content": "r"}, {"role": "assistant", "content": '
                b'"s"}]}',
            ),
        ),
        1,
        (("d.jsonl", 1, R.MALFORMED_JSON), ("d.jsonl", 3, R.MALFORMED_JSON)),
        details=(
            "key 'instruction' appears twice with different values",
            "key 'content' appears twice with different values in field 'messages'[0]",
        ),
    ),
    # Lines and layout.
    Case("empty_jsonl", one("d.jsonl", b""), notes=("holds no records",)),
    Case("blank_lines_only", one("d.jsonl", b"\n  \n\t\r\n"), notes=("holds no records",)),
    Case("blank_lines_between", one("d.jsonl", b"\n" + lines(good(0)) + b"   \n\n" + lines(good(1)) + b"\n\n"), 2),
    Case("crlf_jsonl", one("d.jsonl", GOOD3.replace(b"\n", b"\r\n")), 3),
    Case("no_final_newline", one("d.jsonl", GOOD3.rstrip(b"\n")), 3),
    Case(
        "huge_line",
        one("d.jsonl", lines({"instruction": "w " * 1_000_000, "output": "y"}, good(0))),
        1,
        (("d.jsonl", 1, R.TOO_LONG),),
    ),
    Case(
        "deep_nesting_jsonl",
        one("d.jsonl", lines(good(0), DEEP, SEMI_DEEP)),
        1,
        (("d.jsonl", 2, R.TOO_DEEP), ("d.jsonl", 3, R.TOO_DEEP)),
        details=(f"nested more than {MAX_DEPTH} levels deep",),
    ),
    Case(
        "deep_nesting_json_element",
        one("d.json", json.dumps([good(0), SEMI_DEEP]).encode()),
        1,
        (("d.json", 1, R.TOO_DEEP),),
    ),
    Case(
        "deep_nesting_json_file", one("d.json", DEEP), error=("d.json", "not valid JSON (nested too deeply to parse)")
    ),
    Case(
        "json_array_in_jsonl_file",
        one("d.jsonl", json.dumps([good(0), good(1)], indent=2).encode()),
        2,
        notes=("holds one JSON array, not JSON Lines; read as JSON",),
    ),
    Case("json_lines_in_json_file", one("d.json", GOOD3), 3, notes=("holds JSON Lines (one record per line)",)),
    # JSON files.
    Case("json_wrapper_object", one("d.json", json.dumps({"version": 2, "data": [good(0), good(1)]}).encode()), 2),
    Case(
        "json_two_wrapper_lists",
        one("d.json", json.dumps({"data": [good(0)], "examples": [good(1)]}).encode()),
        error=("d.json", "expected a JSON array of records (or an object with one 'data'"),
    ),
    Case(
        "json_single_record",
        one("d.json", json.dumps(good(0)).encode()),
        error=("d.json", "found an object with fields 'instruction', 'input', 'output'"),
    ),
    Case("json_scalar", one("d.json", b"42"), error=("d.json", "expected a JSON array of records, found a number")),
    Case("json_null", one("d.json", b"null"), error=("d.json", "expected a JSON array of records, found null")),
    Case(
        "json_invalid",
        one("d.json", b'[{"instruction": "a", "output": "b"},'),
        error=("d.json", "not valid JSON (Expecting value at line 1 column"),
    ),
    Case(
        "json_trailing_garbage",
        one("d.json", json.dumps([good(0)]).encode() + b"\nx"),
        error=("d.json", "not valid JSON (Extra data at line 2 column 1)"),
    ),
    Case("json_empty_file", one("d.json", b""), notes=("holds no records",)),
    Case("json_empty_array", one("d.json", b"[]"), notes=("holds no records",)),
    # Lone surrogates and names.
    Case(
        "lone_surrogates_jsonl",
        one(
            "d.jsonl",
            lines(
                b'{"instruction": "a \\ud800", "output": "y"}',
                b'{"instruction": "x", "output": "y", "\\udc80key": 1}',
                {**good(0), "task": "\udcff"},
                b'{"messages": [{"role": "user", "content": "\\ud83d"}, {"role": "assistant", "content": "z"}]}',
                b'{"instruction": "smile", "output": "\\ud83d\\ude00"}',
            ),
        ),
        1,
        tuple(("d.jsonl", i, R.INVALID_UNICODE) for i in (1, 2, 3, 4)),
        details=(
            "lone surrogate escape (\\ud800) in field 'instruction'",
            "(\\udc80) in a field name '\\udc80key'",
            "(\\udcff) in field 'task'",
            "(\\ud83d) in field 'messages'[0]['content']",
        ),
        check=_check_surrogate_pair,
    ),
    Case(
        "lone_surrogate_json_file",
        one("d.json", b'[{"instruction": "x \\udc80", "output": "y"}, {"instruction": "ok", "output": "y"}]'),
        1,
        (("d.json", 0, R.INVALID_UNICODE),),
    ),
    Case(
        "json_file_with_bad_bytes_and_escapes",
        one(
            "d.json",
            b'[{"instruction": "x \xff", "output": "y"}, {"instruction": "x \\udc80", "output": "y"}, {"instruction": '
            b'"\\ud800", "output": "y"}, {"instruction": "ok", "output": "y"}]',
        ),
        1,
        (("d.json", 0, R.INVALID_UTF8), ("d.json", 1, R.INVALID_UTF8), ("d.json", 2, R.INVALID_UNICODE)),
    ),
    Case(
        "non_utf8_file_name",
        tree({NON_UTF8_NAME: lines(good(0), b'{"instruction": "\\udc80", "output": "y"}')}),
        1,
        (("src/caf\\xe9.jsonl", 2, R.INVALID_UNICODE),),
        check=_check_non_utf8_name,
    ),
    # Byte-order marks and wide encodings.
    Case(
        "bom_jsonl",
        one("d.jsonl", b"\xef\xbb\xbf" + GOOD3),
        3,
        encodings=(("d.jsonl", "utf-8-sig"),),
        notes=("UTF-8 text with a byte-order mark",),
    ),
    Case(
        "bom_json",
        one("d.json", b"\xef\xbb\xbf" + json.dumps([good(0)]).encode()),
        1,
        encodings=(("d.json", "utf-8-sig"),),
    ),
    Case("bom_csv", one("d.csv", b"\xef\xbb\xbf" + CSV_GOOD), 2, encodings=(("d.csv", "utf-8-sig"),)),
    Case("bom_inside_jsonl", one("d.jsonl", lines(good(0)) + b"\xef\xbb\xbf" + lines(good(1))), 2),
    Case(
        "utf16le_bom_jsonl",
        one("d.jsonl", GOOD3.decode().encode("utf-16")),
        3,
        encodings=(("d.jsonl", "utf-16-le"),),
        notes=("UTF-16-LE text with a byte-order mark, decoded as such",),
    ),
    Case(
        "utf16be_bom_json",
        one(
            "d.json",
            b"\xfe\xff"
            + json.dumps(
                [good(0), {"instruction": "caf\u00e9 \u4e2d \U0001f600", "output": "y"}], ensure_ascii=False
            ).encode("utf-16-be"),
        ),
        2,
        encodings=(("d.json", "utf-16-be"),),
    ),
    Case(
        "utf32le_bom_csv",
        one("d.csv", b"\xff\xfe\x00\x00" + CSV_GOOD.decode().encode("utf-32-le")),
        2,
        encodings=(("d.csv", "utf-32-le"),),
    ),
    Case(
        "utf32be_bom_jsonl",
        one("d.jsonl", b"\x00\x00\xfe\xff" + GOOD3.decode().encode("utf-32-be")),
        3,
        encodings=(("d.jsonl", "utf-32-be"),),
    ),
    Case(
        "utf16_bom_bad_code_unit",
        one(
            "d.jsonl",
            b"\xff\xfe"
            + lines(good(0)).decode().encode("utf-16-le")
            + '{"instruction": "x'.encode("utf-16-le")
            + b"\x00\xd8"
            + '", "output": "y"}\n'.encode("utf-16-le"),
        ),
        1,
        (("d.jsonl", 2, R.INVALID_UTF8),),
        encodings=(("d.jsonl", "utf-16-le"),),
        details=("not valid UTF-16-LE",),
    ),
    Case(
        "utf16le_without_bom",
        one("d.jsonl", GOOD3.decode().encode("utf-16-le")),
        error=("d.jsonl", "looks like UTF-16-LE text without a byte-order mark; save it as UTF-8"),
    ),
    Case(
        "utf16be_without_bom",
        one("d.csv", CSV_GOOD.decode().encode("utf-16-be")),
        error=("d.csv", "looks like UTF-16-BE text without a byte-order mark; save it as UTF-8"),
    ),
    Case(
        "utf32le_without_bom",
        one("d.json", json.dumps([good(0)]).encode("utf-32-le")),
        error=("d.json", "looks like UTF-32-LE text without a byte-order mark; save it as UTF-8"),
    ),
    # CSV.
    Case(
        "csv_too_many_cells",
        one("d.csv", csv_text("instruction,input,output", "a,,b,extra", "c,,d")),
        1,
        (("d.csv", 2, R.MALFORMED_CSV),),
        details=("1 cell beyond the header",),
    ),
    Case(
        "csv_too_few_cells",
        one("d.csv", csv_text("instruction,output,input", "a,b", "c", "e,f,g")),
        2,
        (("d.csv", 3, R.MISSING_FIELD),),
        details=("field 'output' is null (the CSV row has 1 of the header's 3 cells)",),
    ),
    Case(
        "csv_huge_field",
        one("d.csv", csv_text("instruction,output", "x" * 200_000 + ",y", "a,b")),
        1,
        (("d.csv", 2, R.TOO_LONG),),
    ),
    Case("csv_crlf", one("d.csv", CSV_GOOD.replace(b"\n", b"\r\n")), 2),
    Case("csv_quoted_newlines", one("d.csv", b'instruction,output\n"line one\nline two",y\nb,c\n'), 2),
    Case("csv_nul_byte", one("d.csv", b"instruction,output\na\x00b,y\nc,d\n"), 2),
    Case(
        "csv_unclosed_quote",
        one("d.csv", b'instruction,output\na,b\n"c,d\ne,f\ng,h\n'),
        1,
        (("d.csv", 5, R.MALFORMED_CSV),),
        details=("a quoted cell opened on line 3 is never closed: lines 3-5 were read as one row",),
    ),
    Case(
        "csv_repeated_header",
        one("d.csv", csv_text("instruction,output,output", "a,b,c")),
        error=("d.csv", "the CSV header names column 'output' more than once"),
    ),
    Case("csv_empty", one("d.csv", b""), notes=("holds no records",)),
    Case("csv_header_only", one("d.csv", b"instruction,output\n"), notes=("holds no records",)),
    Case(
        "one_file_all_quarantined",
        tree({"a.jsonl": lines(good(0)), "b.csv": csv_text("instruction,output", "a,b,c", "d,e,f")}),
        1,
        (("src/b.csv", 2, R.MALFORMED_CSV), ("src/b.csv", 3, R.MALFORMED_CSV)),
        check=_check_one_file_all_quarantined,
    ),
    # Parquet.
    Case(
        "parquet_wrong_typed_column",
        one("d.parquet", parquet(pl.DataFrame({"instruction": [1, 2], "output": ["a", "b"]}))),
        0,
        (("d.parquet", 0, R.WRONG_TYPE), ("d.parquet", 1, R.WRONG_TYPE)),
    ),
    Case(
        "parquet_null_cell",
        one("d.parquet", parquet(pl.DataFrame({"instruction": ["a", None], "output": ["x", "y"]}))),
        1,
        (("d.parquet", 1, R.MISSING_FIELD),),
    ),
    Case(
        "parquet_corrupt",
        one("d.parquet", b"PAR1 this is not parquet"),
        error=("d.parquet", "not a readable Parquet file"),
    ),
    # Chat records.
    Case("chat_turns_kept_and_counted", one("d.jsonl", lines(CHAT, good(0))), 2, check=_check_chat),
    Case(
        "chat_non_string_content",
        one(
            "d.jsonl",
            lines(
                {
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                        {"role": "assistant", "content": "x"},
                    ]
                },
                {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "assistant", "content": None, "tool_calls": []},
                        {"role": "assistant", "content": "x"},
                    ]
                },
            ),
        ),
        0,
        (("d.jsonl", 1, R.WRONG_TYPE), ("d.jsonl", 2, R.WRONG_TYPE)),
        details=("turn 0 content: list", "turn 1 content: NoneType"),
    ),
    Case(
        "chat_empty_messages",
        one("d.jsonl", lines({"messages": []})),
        0,
        (("d.jsonl", 1, R.EMPTY_FIELD),),
        details=("field 'messages' is an empty list",),
    ),
    Case(
        "chat_no_assistant",
        one("d.jsonl", lines({"messages": [{"role": "user", "content": "hi"}]}, {"messages": "not a list"})),
        0,
        (("d.jsonl", 1, R.MISSING_FIELD), ("d.jsonl", 2, R.WRONG_TYPE)),
    ),
    Case(
        "all_quarantined_message",
        one(
            "d.jsonl",
            lines(
                {"\ufeffinstruction": "a", "input": "", "output": "b"},
                {"\ufeffinstruction": "c", "input": "", "output": "d"},
                {"instruction": 1, "output": "e"},
            ),
        ),
        0,
        (("d.jsonl", 1, R.MISSING_FIELD), ("d.jsonl", 2, R.MISSING_FIELD), ("d.jsonl", 3, R.WRONG_TYPE)),
        check=_check_all_quarantined,
    ),
    # Compressed files.
    Case("gzip_jsonl", one("d.jsonl.gz", compress(GOOD3, "gzip")), 3),
    Case("bz2_ndjson", one("d.ndjson.bz2", compress(GOOD3, "bz2")), 3),
    Case("xz_json", one("d.json.xz", compress(json.dumps([good(0), good(1)]).encode(), "xz")), 2),
    Case(
        "zstd_csv_with_bom",
        one("d.csv.zst", compress(b"\xef\xbb\xbf" + CSV_GOOD, "zstd")),
        2,
        encodings=(("d.csv.zst", "utf-8-sig"),),
    ),
    Case(
        "gzip_with_bad_rows",
        one("d.JSONL.GZ", compress(lines(good(0), b"{oops"), "gzip")),
        1,
        (("d.JSONL.GZ", 2, R.MALFORMED_JSON),),
    ),
    Case(
        "gzip_truncated",
        one("d.jsonl.gz", compress(GOOD3 * 50, "gzip")[:-20]),
        error=("d.jsonl.gz", "not readable as gzip-compressed data"),
    ),
    Case("gzip_not_gzip", one("d.csv.gz", CSV_GOOD), error=("d.csv.gz", "not readable as gzip-compressed data")),
    Case(
        "gzip_named_as_plain",
        one("d.jsonl", compress(GOOD3, "gzip")),
        error=("d.jsonl", "holds gzip-compressed data, not JSONL text (name it with a .gz suffix)"),
    ),
    Case(
        "compressed_parquet_source",
        one("d.parquet.gz", compress(parquet(pl.DataFrame([good(0)])), "gzip")),
        error=("d.parquet.gz", "compressed Parquet (.parquet.gz) is not read"),
    ),
    # Folders: what is not read is said.
    Case(
        "folder_skips_are_reported",
        tree(
            {
                "a.jsonl": lines(good(0)),
                "b.jsonl.gz": compress(lines(good(1)), "gzip"),
                "notes.txt": b"not data",
                "README": b"no suffix",
                "c.parquet.gz": compress(parquet(pl.DataFrame([good(2)])), "gzip"),
                "d.txt.gz": compress(b"x", "gzip"),
                "e.tar.gz": compress(b"x", "gzip"),
                "pipe.jsonl": fifo,
                "loop.jsonl": link("loop.jsonl"),
                "broken.jsonl": link("nowhere.jsonl"),
                "up": link(".."),
                "linked.jsonl": link("a.jsonl"),
                ".hidden.jsonl": lines(good(3)),
                ".git/objects/x.jsonl": lines(good(4)),
                "sub/.cache/y.jsonl": lines(good(5)),
                "sub/z.csv": csv_text("instruction,output", "Say z.,z"),
            }
        ),
        # a.jsonl, b.jsonl.gz, sub/z.csv; linked.jsonl is read too (a link to a file is the file): a duplicate of
        # a.jsonl
        3,
        (("src/linked.jsonl", 1, R.DUPLICATE),),
        skipped=(
            ("src/.git/", "hidden"),
            ("src/.hidden.jsonl", "hidden"),
            ("src/README", "unsupported file type (no suffix)"),
            ("src/broken.jsonl", "broken symbolic link (points to nowhere.jsonl)"),
            ("src/c.parquet.gz", "compressed Parquet (.parquet.gz) is not read"),
            ("src/d.txt.gz", "unsupported file type '.txt.gz'"),
            ("src/e.tar.gz", "an archive (.tar.gz) is not read"),
            ("src/loop.jsonl", "symbolic link loop"),
            ("src/notes.txt", "unsupported file type '.txt'"),
            ("src/pipe.jsonl", "not a regular file (a FIFO)"),
            ("src/sub/.cache/", "hidden"),
            ("src/up", "symbolic link to a folder (not followed)"),
        ),
    ),
    Case(
        "folder_with_nothing_to_read",
        tree({"notes.txt": b"x", ".hidden.jsonl": lines(good(0))}),
        error=("src", "folder holds no .jsonl, .ndjson, .json, .parquet, .csv files (not read: .hidden.jsonl: hidden"),
    ),
    Case("folder_empty", tree({}), error=("src", "folder holds no")),
    Case("source_missing", lambda root: root / "nope.jsonl", error=("nope.jsonl", "no such file or folder")),
    Case("source_unsupported_type", one("d.xml", b"<x/>"), error=("d.xml", "unsupported file type '.xml'")),
    Case("source_fifo", entry("p.jsonl", fifo), error=("p.jsonl", "not a regular file (a FIFO)")),
    Case("source_symlink_loop", entry("loop", link("loop")), error=("loop", "symbolic link loop")),
    Case(
        "source_broken_symlink",
        entry("d.jsonl", link("gone.jsonl")),
        error=("d.jsonl", "broken symbolic link (points to gone.jsonl)"),
    ),
]
