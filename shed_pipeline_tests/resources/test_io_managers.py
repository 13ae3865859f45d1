"""The Parquet IO managers (local folder and S3): values round-trip exactly, a missing upstream
fails naming where it was looked for, anything but a polars DataFrame is refused."""

import dagster as dg
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.objectstore import ObjectStore, ObjectStoreError, S3Uri
from shed_pipeline.local_servers import free_port
from shed_pipeline.resources import PolarsParquetIOManager, S3ParquetIOManager, s3_resource
from shed_pipeline.settings import Settings


def s3(bucket) -> S3Resource:
    # Plain values: outside a run, Dagster does not resolve the EnvVars that s3_resource passes.
    return S3Resource(
        endpoint_url=bucket.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key-id",
        aws_secret_access_key="test-secret-key",
    )


FRAME = pl.DataFrame({"row_id": ["a", "b"], "vector": [[0.5, 1.0], [2.0, -1.0]], "n": [1, 2]})


@pytest.fixture(params=["local", "s3"])
def io_manager(request, tmp_path):
    if request.param == "local":
        return PolarsParquetIOManager(base_dir=str(tmp_path / "assets")), str(
            tmp_path / "assets" / "embeddings.parquet"
        )
    bucket = request.getfixturevalue("s3_bucket")
    return S3ParquetIOManager(
        s3=s3(bucket), prefix=f"s3://{bucket.name}/io"
    ), f"s3://{bucket.name}/io/embeddings.parquet"


def test_values_round_trip_and_a_missing_upstream_names_its_location(io_manager):
    manager, where = io_manager
    key = dg.AssetKey("embeddings")
    with pytest.raises(FileNotFoundError, match=f"{where}: upstream asset embeddings has not been materialized here"):
        manager.load_input(
            dg.build_input_context(asset_key=key, upstream_output=dg.build_output_context(asset_key=key))
        )
    manager.handle_output(dg.build_output_context(asset_key=key), FRAME)
    loaded = manager.load_input(
        dg.build_input_context(asset_key=key, upstream_output=dg.build_output_context(asset_key=key))
    )
    assert loaded.equals(FRAME) and loaded.schema == FRAME.schema


def test_only_polars_frames_are_stored(io_manager):
    manager, _ = io_manager
    with pytest.raises(TypeError, match="embeddings: expected a polars DataFrame, got dict"):
        manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("embeddings")), {"not": "a frame"})


def test_s3_values_are_parquet_objects_under_the_prefix(s3_bucket):
    manager = S3ParquetIOManager(s3=s3(s3_bucket), prefix=f"s3://{s3_bucket.name}/io")
    manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey(["group", "clusters"])), FRAME)
    body = s3_bucket.get("io/group/clusters.parquet")
    assert body[:4] == b"PAR1"
    assert (
        s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="io/group/clusters.parquet")["ContentType"]
        == "application/vnd.apache.parquet"
    )


def test_s3_requests_are_retried_in_one_layer_only(monkeypatch):
    """ObjectStore's backoff is the only retry loop: botocore must not retry inside each attempt."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with dg.build_resources({"s3": s3_resource(Settings.from_env())}) as built:
        client = built.s3  # what the resource gives a run: its client, credentials resolved
    sends = []
    client.meta.events.register("before-send.s3.*", lambda **_: sends.append(1))
    with pytest.raises(ObjectStoreError, match="cannot read the object's metadata after 3 attempts"):
        ObjectStore(client, attempts=3, sleep=lambda _: None).head(S3Uri("some-bucket", "x.json"))
    assert len(sends) == 3


def test_a_value_written_by_another_run_is_refused_in_one_line(io_manager):
    """The guard behind the project lock: a run reads only what its own run (or the run it names)
    wrote; a value replaced by another run meanwhile fails instead of mixing into this run."""
    manager, where = io_manager
    key = dg.AssetKey("embeddings")
    manager.handle_output(dg.build_output_context(asset_key=key, run_id="run-a"), FRAME)
    ok = manager.load_input(
        dg.build_input_context(asset_key=key, upstream_output=dg.build_output_context(asset_key=key, run_id="run-a"))
    )
    assert ok.equals(FRAME)
    manager.handle_output(
        dg.build_output_context(asset_key=key, run_id="run-b"), FRAME.head(1)
    )  # another run, same project
    with pytest.raises(
        Exception, match=f"embeddings at {where} was written by run run-b, not by run run-a whose value this run reads"
    ) as exc:
        manager.load_input(
            dg.build_input_context(
                asset_key=key, upstream_output=dg.build_output_context(asset_key=key, run_id="run-a")
            )
        )
    assert len(str(exc.value).splitlines()) == 1


def test_without_an_upstream_run_the_latest_materialization_is_expected(io_manager, tmp_path):
    """An upstream asset not computed in this run: its latest materialization names the run."""
    manager, _ = io_manager
    key = dg.AssetKey("embeddings")

    @dg.asset(name="embeddings", io_manager_key="elsewhere")
    def materialized_by_a_real_run():
        return 1

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_id = dg.materialize(
            [materialized_by_a_real_run], instance=instance, resources={"elsewhere": dg.InMemoryIOManager()}
        ).run_id
        manager.handle_output(dg.build_output_context(asset_key=key, run_id=run_id), FRAME)
        assert manager.load_input(dg.build_input_context(asset_key=key, instance=instance)).equals(FRAME)
        manager.handle_output(dg.build_output_context(asset_key=key, run_id="some-run"), FRAME)
        with pytest.raises(
            Exception,
            match=(
                f"was written by run some-run, not by run {run_id}, this Dagster instance's latest materialization of "
                "it: .*; materialize embeddings again"
            ),
        ):
            manager.load_input(dg.build_input_context(asset_key=key, instance=instance))


def test_an_asset_materialized_alone_reads_its_upstream_from_the_run_that_wrote_it(tmp_path):
    """Materializing a selection (the UI's "materialize selected", a retry of one step): the upstream
    asset is not computed in this run, and Dagster hands the IO manager its output context with a
    placeholder run id; the guard must compare against the upstream's latest materialization."""
    manager = PolarsParquetIOManager(base_dir=str(tmp_path / "assets"))

    @dg.asset(name="embeddings")
    def upstream() -> pl.DataFrame:
        return FRAME

    @dg.asset
    def downstream(embeddings: pl.DataFrame) -> pl.DataFrame:
        return embeddings.head(1)

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        dg.materialize([upstream], instance=instance, resources={"io_manager": manager})
        result = dg.materialize(
            [upstream, downstream], selection=[downstream], instance=instance, resources={"io_manager": manager}
        )
        assert result.output_for_node("downstream").equals(FRAME.head(1))
        # Another instance's run replaces the upstream value: refused, naming what to do.
        manager.handle_output(
            dg.build_output_context(asset_key=dg.AssetKey("embeddings"), run_id="some-other-run"), FRAME
        )
        with pytest.raises(Exception, match="was written by run some-other-run, .*; materialize embeddings again"):
            dg.materialize(
                [upstream, downstream],
                selection=[downstream],
                instance=instance,
                resources={"io_manager": manager},
                raise_on_error=True,
            )


def test_an_input_that_names_columns_reads_only_those(tmp_path):
    """{"columns": [...]} on an input (as Dagster's table IO managers take it): the embeddings asset
    reads three columns of raw_dataset, not a million rows' responses and records."""
    manager = PolarsParquetIOManager(base_dir=str(tmp_path / "assets"))
    wide = pl.DataFrame(
        {"row_id": ["a", "b"], "instruction": ["i1", "i2"], "record": ["{}", "{}"], "output": ["o1", "o2"]}
    )

    @dg.asset(name="raw_dataset")
    def upstream() -> pl.DataFrame:
        return wide

    @dg.asset(ins={"raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "instruction"]})})
    def narrow(raw_dataset: pl.DataFrame) -> pl.DataFrame:
        return raw_dataset

    @dg.asset
    def everything(raw_dataset: pl.DataFrame) -> pl.DataFrame:
        return raw_dataset

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize([upstream, narrow, everything], instance=instance, resources={"io_manager": manager})
    assert result.output_for_node("narrow").equals(wide.select("row_id", "instruction"))
    assert result.output_for_node("everything").equals(wide)


WIDE = pl.DataFrame({"row_id": ["a", "b", "c"], "split": ["pool", "test", "pool"], "record": ["{1}", "{2}", "{3}"]})


def test_a_lazy_input_is_a_scan_the_asset_narrows_and_is_checked_like_a_frame(io_manager, tmp_path):
    """An input annotated pl.LazyFrame: the asset picks the columns and rows it reads (a million
    rows' texts need not be loaded for the few it uses), and the writer check still applies."""
    manager, where = io_manager
    where = where.replace("embeddings", "raw_dataset")
    seen = []

    @dg.asset(name="raw_dataset")
    def upstream() -> pl.DataFrame:
        return WIDE

    @dg.asset
    def reader(raw_dataset: pl.LazyFrame) -> pl.DataFrame:
        seen.append(type(raw_dataset))
        return raw_dataset.filter(pl.col("split") == "pool").select("row_id", "record").collect()

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize([upstream, reader], instance=instance, resources={"io_manager": manager})
        assert seen == [pl.LazyFrame]
        assert result.output_for_node("reader").equals(
            WIDE.filter(pl.col("split") == "pool").select("row_id", "record")
        )
        manager.handle_output(
            dg.build_output_context(asset_key=dg.AssetKey("raw_dataset"), run_id="some-other-run"), WIDE
        )
        with pytest.raises(
            Exception,
            match=f"raw_dataset at {where} was written by run some-other-run, .*; materialize raw_dataset again",
        ):
            dg.materialize(
                [upstream, reader],
                selection=[reader],
                instance=instance,
                resources={"io_manager": manager},
                raise_on_error=True,
            )


def test_a_lazy_input_of_a_partitioned_asset_is_the_union_in_partition_order(tmp_path):
    manager = PolarsParquetIOManager(base_dir=str(tmp_path / "assets"))
    parts = dg.StaticPartitionsDefinition(["0", "1", "2"])

    @dg.asset(name="raw_dataset", partitions_def=parts)
    def upstream(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return WIDE.slice(int(context.partition_key), 1)

    @dg.asset(ins={"raw_dataset": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
    def reader(raw_dataset: pl.LazyFrame) -> pl.DataFrame:
        return raw_dataset.select("row_id", "split").collect()

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        for key in ("2", "0", "1"):  # materialized out of order
            dg.materialize([upstream], partition_key=key, instance=instance, resources={"io_manager": manager})
        result = dg.materialize(
            [upstream, reader], selection=[reader], instance=instance, resources={"io_manager": manager}
        )
    assert result.output_for_node("reader").equals(WIDE.select("row_id", "split"))
