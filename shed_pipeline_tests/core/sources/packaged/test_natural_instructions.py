import io
import json
import tarfile

import pytest

from shed_pipeline.core.sources import FieldMapping, load_source
from shed_pipeline.core.sources.packaged import natural_instructions as ni


def fake_bigbench(path, tasks: dict[str, int]):
    """An archive laid out like bigbench-1.0.0.tar.gz, with small Natural Instructions tasks."""
    with tarfile.open(path, "w:gz") as tf:

        def add(name, obj):
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        for t, n in tasks.items():
            add(
                f"bigbench-1.0.0/bigbench/benchmark_tasks/natural_instructions/{t}/task.json",
                {
                    "task_prefix": f"Definition of {t}. ",
                    "examples": [{"input": f"{t} input {i}", "target": [f"answer {i % 3}", "alt"]} for i in range(n)]
                    + [{"input": "no answer", "target": []}],
                },
            )
        add(
            "bigbench-1.0.0/bigbench/benchmark_tasks/social_iqa/task.json",
            {"examples": [{"input": "x", "target_scores": {"a": 1}}]},
        )
    return path


def test_extract_reads_every_task_and_example(tmp_path):
    arch = fake_bigbench(tmp_path / "bb.tar.gz", {"subtask001_alpha": 5, "subtask002_beta": 3})
    out = ni.extract_natural_instructions(arch, tmp_path / "ni.parquet", log=lambda m: None)
    import polars as pl

    df = pl.read_parquet(out)
    assert df.height == 5 + 3 + 2  # the empty-target examples are kept here and quarantined later
    assert sorted(df["task"].unique()) == ["subtask001_alpha", "subtask002_beta"]
    row = df.filter(pl.col("task") == "subtask002_beta").row(1, named=True)
    assert row["instruction"] == "Definition of subtask002_beta." and row["input"] == "subtask002_beta input 1"
    assert row["output"] == "answer 1" and row["references"] == ["answer 1", "alt"]


def test_default_source_loads_through_the_cache_with_stratified_sample_and_quarantine(tmp_path):
    arch = fake_bigbench(tmp_path / "bb.tar.gz", {f"subtask00{i}_t{i}": 30 for i in range(1, 5)})
    cache = tmp_path / "cache"
    loaded = load_source(
        "natural-instructions",
        FieldMapping(),
        rows=40,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=cache,
        log=lambda m: None,
        bigbench_archive=arch,
    )
    assert loaded.units_available == 4 * 31
    assert loaded.rows.height + loaded.quarantine.height == 40
    assert set(loaded.quarantine["reason"].to_list()) <= {"empty_field"}
    counts = loaded.rows.group_by("task").len()["len"].to_list()
    assert max(counts) - min(counts) <= 1  # spread evenly over tasks
    assert (cache / "natural_instructions_v1" / "natural_instructions_v1.parquet").is_file()
    # Second load reads the extracted file, not the archive.
    gone = tmp_path / "gone.tar.gz"
    again = load_source(
        "natural-instructions",
        FieldMapping(),
        rows=40,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=cache,
        log=lambda m: None,
        bigbench_archive=gone,
    )
    assert again.rows.equals(loaded.rows)


def test_corrupt_archive_fails_with_its_name(tmp_path):
    bad = tmp_path / "bb.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(RuntimeError, match="bb.tar.gz: cannot read"):
        ni.extract_natural_instructions(bad, tmp_path / "o.parquet", log=lambda m: None)


def test_missing_explicit_archive_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tar.gz"):
        ni.fetch_archive(tmp_path, log=lambda m: None, archive=tmp_path / "nope.tar.gz")
