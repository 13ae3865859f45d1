"""Which files a source is, the one skip rule, and what is reported about entries not read."""

import gzip
import json
import os

import pytest

from shed_pipeline.core.sources import SourceError, skipped_lines
from shed_pipeline.core.sources.checks import validate_units
from shed_pipeline.core.sources.listing import list_source_files, why_skipped
from shed_pipeline.core.sources.load import read_units
from shed_pipeline.core.sources.quarantine import QuarantineEntry, all_quarantined_message
from shed_pipeline.core.sources.readers import source_kind
from shed_pipeline.core.sources.reasons import MALFORMED_JSON
from shed_pipeline.core.sources.units import SourceReport
from shed_pipeline_tests.core.sources.reading import MAP
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def test_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(SourceError, match="holds no"):
        read_units(tmp_path)


def test_source_kind_and_the_one_skip_rule(tmp_path):
    assert (
        source_kind("a/b/Data.JSONL.GZ") == ("jsonl", "gzip")
        and source_kind("x.csv.zst") == ("csv", "zstd")
        and source_kind("x.parquet") == ("parquet", None)
    )
    assert source_kind("x.parquet.gz") is None and source_kind("x.txt") is None and source_kind("x.gz") is None
    assert why_skipped("sub/.cache/x.jsonl").startswith("hidden") and why_skipped(".x.jsonl").startswith("hidden")
    assert why_skipped("sub/x.parquet.gz").startswith("compressed Parquet") and why_skipped("sub/x.jsonl.xz") is None


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
    report = SourceReport()
    res = validate_units(read_units(src, report), MAP, 1000)
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
    with pytest.raises(SourceError) as exc:
        list_source_files(path)
    assert str(exc.value) == f"{path}: {message}"


def test_skipped_lines_list_the_first_entries_and_count_the_rest_by_reason():
    skipped = [(f"src/.f{i}", "hidden (a name in its path starts with '.')") for i in range(30)] + [
        ("src/x.txt", "unsupported file type '.txt'")
    ]
    lines = skipped_lines(skipped, limit=2)
    assert lines == [
        "src/.f0: not read: hidden (a name in its path starts with '.')",
        "src/.f1: not read: hidden (a name in its path starts with '.')",
        "and 29 more not read: hidden 28, unsupported file type '.txt' 1",
    ]
    entry = QuarantineEntry("f.jsonl", 1, MALFORMED_JSON, "Expecting value at column 1")
    assert (
        all_quarantined_message("f.jsonl", [entry])
        == "all 1 row of f.jsonl quarantined: malformed_json 1 (Expecting value at column 1)"
    )
