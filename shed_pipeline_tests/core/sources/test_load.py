"""load_source on bad input: frames that can be stored whatever the records and file names hold,
the chat columns, and what reading noticed (skipped entries, encodings, notes, per-file counts)."""

import json
import os

import duckdb
import polars as pl
import pytest

from shed_pipeline.core.sources import ROW_SCHEMA, FieldMapping, SourceError, load_source, row_id_for, source_label
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def _load(source, tmp_path, rows=None):
    return load_source(
        str(source),
        FieldMapping(),
        rows=rows,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=tmp_path / "cache",
        log=lambda m: None,
    )


def _store(frame: pl.DataFrame, tmp_path, name: str) -> None:
    frame.write_parquet(tmp_path / f"{name}.parquet")
    con = duckdb.connect()
    con.register("incoming", frame.to_arrow())
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
    assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == frame.height


def test_surrogates_in_records_and_file_names_never_reach_the_frames(tmp_path):
    src = tmp_path / "src"
    bad_name = src / os.fsdecode(b"d\xe9.jsonl")
    write_jsonl(
        bad_name,
        make_rows(3),
        [b'{"instruction": "x \\ud800", "output": "y"}', b'{"instruction": "\xff", "output": "y"}'],
    )
    (src / "e.json").write_bytes(
        b'[{"instruction": "\\udc80", "output": "y", "task": "t"}, {"instruction": "ok", "output": "\\ud83d\\ude00"}]'
    )
    loaded = _load(src, tmp_path)
    shown = str(src / "d\\xe9.jsonl")
    assert loaded.rows["source_file"].to_list() == [shown] * 3 + [str(src / "e.json")]
    assert loaded.quarantine.select("source_file", "source_locator", "reason").rows() == [
        (shown, 4, "invalid_unicode"),
        (shown, 5, "invalid_utf8"),
        (str(src / "e.json"), 0, "invalid_unicode"),
    ]
    assert loaded.file_units == {shown: 5, str(src / "e.json"): 2}
    _store(loaded.rows, tmp_path, "rows")
    _store(loaded.quarantine, tmp_path, "quarantine")


def test_chat_columns_in_the_frame(tmp_path):
    recs = [
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "bye"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Q"},
                {"role": "tool", "content": "t"},
                {"role": "function", "content": "f"},
                {"role": "assistant", "content": "A"},
            ]
        },
    ] + make_rows(2)
    loaded = _load(write_jsonl(tmp_path / "c.jsonl", recs), tmp_path)
    assert list(loaded.rows.schema.items()) == list(ROW_SCHEMA.items())
    assert loaded.rows["messages"].to_list()[:2] == [
        '[{"role":"user","content":"Hi"}]',
        '[{"role":"user","content":"Q"}]',
    ]
    assert loaded.rows["messages"].to_list()[2:] == [None, None]
    assert loaded.rows["turns_dropped"].to_list() == [1, 2, 0, 0]
    assert loaded.turns_dropped_after_last_assistant == 1 and loaded.turns_dropped_other_roles == 2
    assert loaded.rows["row_id"].to_list()[:2] == [row_id_for("Hi", "", "Hello"), row_id_for("Q", "", "A")]


def test_what_reading_noticed_is_on_the_loaded_source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rows = make_rows(4)
    (src / "a.jsonl").write_bytes("".join(json.dumps(r) + "\n" for r in rows[:2]).encode("utf-16"))
    (src / "b.csv").write_bytes(b"")
    (src / "notes.txt").write_text("x")
    write_jsonl(src / ".hidden" / "c.jsonl", rows[2:])
    loaded = _load(src, tmp_path)
    assert loaded.rows.height == 2 and loaded.encodings == {str(src / "a.jsonl"): "utf-16-le"}
    assert loaded.file_units == {str(src / "a.jsonl"): 2, str(src / "b.csv"): 0}
    assert [n for n, _ in loaded.skipped] == [str(src / ".hidden") + "/", str(src / "notes.txt")]
    assert loaded.notes == [
        f"{src / 'a.jsonl'}: UTF-16-LE text with a byte-order mark, decoded as such",
        f"{src / 'b.csv'}: holds no records",
    ]


def test_a_symlink_loop_source_fails_with_its_name(tmp_path):
    loop = tmp_path / "loop"
    os.symlink("loop", loop)
    assert source_label(str(loop)) == str(loop)
    with pytest.raises(SourceError, match=f"^{loop}: symbolic link loop$"):
        _load(loop, tmp_path)
