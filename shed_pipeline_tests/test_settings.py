"""Settings: the one reader of the environment, its defaults and its one-line errors."""

import ast
import os
from pathlib import Path

import pytest

import shed_pipeline
from shed_pipeline.settings import S3Access, Settings

PACKAGE = Path(shed_pipeline.__file__).parent


def test_defaults_without_any_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s == Settings(home=tmp_path / ".shed_pipeline")
    assert s.lineage_path == tmp_path / ".shed_pipeline" / "lineage.duckdb"
    assert s.legacy_lineage_path == tmp_path / ".shed_pipeline" / "out" / "lineage.duckdb"
    assert s.local_out == tmp_path / ".shed_pipeline" / "out"
    assert s.dagster_home_dir == tmp_path / ".shed_pipeline" / "dagster_home"
    assert s.downloads == Path.home() / ".cache" / "shed_pipeline"
    assert s.asset_values == str(tmp_path / ".shed_pipeline" / "assets")
    assert (s.env, s.executor, s.device, s.precision, s.embedding_shards) == (
        "local",
        "multiprocess",
        "auto",
        "auto",
        1,
    )


def test_every_variable_is_read():
    env = {
        "SHED_PIPELINE_HOME": "/p",
        "SHED_ENV": " PROD ",
        "SHED_PIPELINE_OUT": "s3://bucket/results",
        "SHED_PIPELINE_LINEAGE": "/l/lineage.duckdb",
        "SHED_PIPELINE_SOURCE": "s3://bucket/src/",
        "SHED_PIPELINE_CACHE": "/c",
        "SHED_BIGBENCH_ARCHIVE": "/a/bigbench.tar.gz",
        "SHED_DEVICE": "cuda:1",
        "SHED_PRECISION": "bf16",
        "SHED_EMBEDDING_SHARDS": "4",
        "SHED_EXECUTOR": "k8s",
        "SHED_K8S_GPU_STEP": "/k/gpu.yaml",
        "DAGSTER_HOME": "/d",
        "AWS_ENDPOINT_URL": "http://other:1",
        "AWS_ENDPOINT_URL_S3": "http://s3:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SESSION_TOKEN": "t",
    }
    s = Settings.from_env(env)
    assert s == Settings(
        home=Path("/p"),
        env="prod",
        out="s3://bucket/results",
        lineage=Path("/l/lineage.duckdb"),
        source="s3://bucket/src/",
        cache_dir=Path("/c"),
        bigbench_archive=Path("/a/bigbench.tar.gz"),
        device="cuda:1",
        precision="bf16",
        embedding_shards=4,
        executor="k8s",
        k8s_gpu_step=Path("/k/gpu.yaml"),
        dagster_home=Path("/d"),
        s3=S3Access(
            endpoint_url="http://s3:9000", region="eu-west-1", access_key_in_env=True, session_token_in_env=True
        ),
    )
    # prod keeps asset values beside the results unless SHED_PIPELINE_IO says where
    assert s.asset_values == "s3://bucket/results/_assets"
    assert Settings.from_env({**env, "SHED_PIPELINE_IO": "s3://b/io"}).asset_values == "s3://b/io"
    assert s.lineage_path == Path("/l/lineage.duckdb") and s.local_out == Path("/p/out")  # s3 results: staged locally
    assert s.dagster_home_dir == Path("/d") and s.downloads == Path("/c")


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SHED_ENV": "staging"}, "SHED_ENV='staging' is not an environment: use one of local, prod"),
        (
            {"SHED_EXECUTOR": "celery"},
            "SHED_EXECUTOR='celery' is not an executor: use one of multiprocess, in_process, k8s",
        ),
        (
            {"SHED_EMBEDDING_SHARDS": "two"},
            "SHED_EMBEDDING_SHARDS='two': give a whole number of embedding shards from 1 to 1024 (1 = not sharded)",
        ),
    ],
)
def test_a_bad_value_fails_in_one_line_naming_the_variable(env, message):
    with pytest.raises(ValueError) as err:
        Settings.from_env(env)
    assert str(err.value) == message


def test_replace_keeps_the_rest_and_the_environment_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path))
    before = dict(os.environ)
    s = Settings.from_env().replace(device="cpu", embedding_shards=3)
    assert (s.home, s.device, s.embedding_shards) == (tmp_path, "cpu", 3)
    assert dict(os.environ) == before


def _environment_reads(path: Path) -> list[str]:
    """`os.environ` / `os.getenv` uses in a module's code (docstrings and comments do not count)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_settings_is_the_only_module_that_touches_the_environment():
    # core/package_index.py reads pip's own PIP_INDEX_URL / PIP_EXTRA_INDEX_URL, as pip does, to find the
    # package indexes it downloads models from: they are pip's settings, not this project's.
    allowed = {"settings.py", "core/package_index.py"}
    readers = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in allowed
        for hit in _environment_reads(path)
    ]
    assert readers == []
