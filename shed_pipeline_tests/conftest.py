import os
from pathlib import Path

import pytest

from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl


@pytest.fixture
def shed_env(tmp_path, monkeypatch):
    """Project folders, DAGSTER_HOME and lineage under a temporary folder; CPU only."""
    home = tmp_path / "home"
    out = tmp_path / "out"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(home))
    monkeypatch.setenv("SHED_PIPELINE_OUT", str(out))
    monkeypatch.setenv("SHED_PIPELINE_LINEAGE", str(out / "lineage.duckdb"))
    monkeypatch.setenv("SHED_PIPELINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SHED_DEVICE", "cpu")
    monkeypatch.delenv("SHED_BIGBENCH_ARCHIVE", raising=False)
    return {"home": home, "out": out, "dagster_home": dagster_home, "tmp": tmp_path}


@pytest.fixture
def source_file(tmp_path) -> Path:
    """240 good rows over four tasks, 2 exact duplicates, and one bad line of each kind."""
    rows = make_rows(240)
    return write_jsonl(tmp_path / "src" / "data.jsonl", rows + rows[:2], BAD_LINES)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
