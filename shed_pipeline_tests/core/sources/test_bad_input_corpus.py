"""Every case of the bad-input corpus through load_source: exactly the rows, quarantine reasons,
skipped entries and errors the case states; `rows_in == rows_ok + rows_quarantined` per file; and
what comes out can be stored (Parquet, a DuckDB table), which lone surrogates used to break."""

import dataclasses
import json
import re

import duckdb
import polars as pl
import pytest

from shed_pipeline.core.sources import FieldMapping, SourceError, load_source
from shed_pipeline.core.sources.readers import jsonl
from shed_pipeline_tests.bad_input_corpus import CASES, MAX_CHARS, Case


def _load(source, tmp_path):
    return load_source(
        str(source),
        FieldMapping(),
        rows=None,
        seed=0,
        max_chars=MAX_CHARS,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=tmp_path / "cache",
        log=lambda m: None,
    )


def _relative(name: str, root) -> str:
    prefix = f"{root}/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stream_from", ["size", "every_file"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, stream_from, tmp_path, monkeypatch):
    # Large JSON Lines files are read a line at a time from the file, small ones from their bytes:
    # every case must come out the same both ways.
    if stream_from == "every_file":
        monkeypatch.setattr(jsonl, "STREAM_MIN_BYTES", -1)
    root = tmp_path / "case"
    root.mkdir()
    source = case.build(root)
    if case.error:
        file, text = case.error
        with pytest.raises(SourceError) as exc:
            _load(source, tmp_path)
        message = str(exc.value)
        assert message.startswith(f"{root / file}: ") and text in message, message
        assert (
            "\n" not in message
            and "Traceback" not in message
            and not re.search(r"<class|\w+\.\w+(Error|Exception)\b", message)
        ), message
        message.encode("utf-8")  # printable, whatever the file name
        return
    loaded = _load(source, tmp_path)
    got = [(_relative(e.source_file, root), e.source_locator, e.reason) for e in loaded.result.quarantine]
    assert got == list(case.quarantined), [dataclasses.astuple(e) for e in loaded.result.quarantine]
    assert loaded.rows.height == case.rows
    assert len(loaded.skipped) == len(case.skipped), loaded.skipped
    for (name, want), (got_name, why) in zip(case.skipped, loaded.skipped, strict=True):
        assert _relative(got_name, root) == name and why.startswith(want), (got_name, why)
    assert {_relative(f, root): enc for f, enc in loaded.encodings.items()} == dict(case.encodings)
    for note in case.notes:
        assert any(note in n for n in loaded.notes), loaded.notes
    for detail in case.details:
        assert any(detail in e.detail for e in loaded.result.quarantine), [e.detail for e in loaded.result.quarantine]
    if case.check:
        case.check(loaded, root)

    # Balance, per file: every unit read is a row or a quarantine entry (no sampling here).
    per_file = loaded.result.file_counts()
    assert set(per_file) <= set(loaded.file_units)
    for file, units in loaded.file_units.items():
        ok, bad = per_file.get(file, (0, 0))
        assert units == ok + bad, (file, units, ok, bad)
    assert loaded.units_available == sum(loaded.file_units.values()) == loaded.rows.height + loaded.quarantine.height

    # What comes out can be stored: Parquet, DuckDB, JSON; logs get encodable lines.
    for label, frame in (("rows", loaded.rows), ("quarantine", loaded.quarantine)):
        path = tmp_path / f"{label}.parquet"
        frame.write_parquet(path)
        assert pl.read_parquet(path).equals(frame)
        con = duckdb.connect()
        con.register("incoming", frame.to_arrow())
        con.execute(f"CREATE TABLE {label} AS SELECT * FROM incoming")
        assert con.execute(f"SELECT count(*) FROM {label}").fetchone()[0] == frame.height
        con.close()
    for entry in loaded.result.quarantine:
        json.dumps(dataclasses.asdict(entry), ensure_ascii=False).encode("utf-8")
    for line in [*loaded.notes, *(f"{n}: {w}" for n, w in loaded.skipped), *loaded.result.all_quarantined_files()]:
        line.encode("utf-8")
