import json
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
    assert reasons == {R.MALFORMED_JSON: 1, R.MISSING_FIELD: 1, R.EMPTY_FIELD: 1, R.WRONG_TYPE: 1, R.INVALID_UTF8: 1, R.NOT_AN_OBJECT: 1, R.DUPLICATE: 2}
    assert len(res.rows) == 20
    # 28 non-blank lines in the file: every one is either a row or quarantined.
    assert res.rows_in == 28 == len(res.rows) + len(res.quarantine)
    bad_utf8 = next(q for q in res.quarantine if q.reason == R.INVALID_UTF8)
    assert bad_utf8.source_locator == 20 + 2 + 5 and "\ufffd" in bad_utf8.excerpt
    dup = [q for q in res.quarantine if q.reason == R.DUPLICATE]
    assert dup[0].row_id == res.rows[0].row_id and "d.jsonl:1" in dup[0].detail


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
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]},
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
    res = R.validate_units(R.read_units(path), R.FieldMapping(instruction="prompt", output="response", task="category"), 1000)
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
    assert Counter(u.payload["task"] for u in s1) == {t: 10 for t in ("digits_to_words", "first_colour", "animal_class", "addition")}
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
