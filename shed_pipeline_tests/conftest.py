import os
from pathlib import Path

import pytest

from shed_pipeline_tests.servers import S3Bucket, moto_server
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
    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", "1")
    monkeypatch.delenv("SHED_BIGBENCH_ARCHIVE", raising=False)
    return {"home": home, "out": out, "dagster_home": dagster_home, "tmp": tmp_path}


@pytest.fixture
def source_file(tmp_path) -> Path:
    """240 good rows over four tasks, 2 exact duplicates, and one bad line of each kind."""
    rows = make_rows(240)
    return write_jsonl(tmp_path / "src" / "data.jsonl", rows + rows[:2], BAD_LINES)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """One moto S3 server on 127.0.0.1 for the session (each test uses its own bucket)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch, request):
    """A fresh bucket on the test S3 server, and the environment that points the pipeline at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test-key-id",
        aws_secret_access_key="test-secret-key",
        region_name="us-east-1",
    )
    name = "shed-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:50].strip("-")
    client.create_bucket(Bucket=name)
    return S3Bucket(name, client, s3_endpoint)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
