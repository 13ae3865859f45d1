"""The pipeline in the `prod` environment against a real S3-compatible server on 127.0.0.1: the
source read from a prefix, asset values and results written to S3, the sensor watching the prefix."""

import hashlib
import io
import json

import dagster as dg
import polars as pl
import pytest

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.resources import resources_for
from shed_pipeline.sensors import source_change_sensor
from shed_pipeline.settings import Settings
from shed_pipeline_tests.assets.test_pipeline import meta, run_config
from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl


def materialize(source, instance):
    return dg.materialize(
        ALL_ASSETS,
        resources=resources_for(Settings.from_env()),
        run_config=run_config(source),
        instance=instance,
        raise_on_error=False,
    )


def test_prod_pipeline_reads_and_writes_s3_and_the_sensor_fires_on_a_new_object(
    shed_env, s3_bucket, tmp_path, monkeypatch
):
    b = s3_bucket.name
    rows = make_rows(240)
    s3_bucket.put("incoming/part-1.jsonl", write_jsonl(tmp_path / "p1.jsonl", rows[:160], BAD_LINES))
    s3_bucket.put("incoming/part-2.jsonl", write_jsonl(tmp_path / "p2.jsonl", rows[160:]))
    monkeypatch.setenv("SHED_ENV", "prod")
    monkeypatch.setenv("SHED_PIPELINE_OUT", f"s3://{b}/curated")
    monkeypatch.setenv("SHED_PIPELINE_SOURCE", f"s3://{b}/incoming/")
    with dg.instance_for_test() as instance:
        result = materialize(f"s3://{b}/incoming/", instance)
        assert result.success
        raw, cur = meta(result, "raw_dataset"), meta(result, "curated_subset")
        assert (
            raw["rows_in"] == 240 + len(BAD_LINES)
            and raw["rows_ok"] == 240
            and raw["rows_quarantined"] == len(BAD_LINES)
        )
        assert raw["source"] == f"s3://{b}/incoming"
        # Results in S3, the input's own schema, as many as were selected.
        lines = s3_bucket.get("curated/curated.jsonl").decode().splitlines()
        assert len(lines) == cur["selected"] > 0
        originals = {json.dumps(r, sort_keys=True) for r in rows}
        assert all(json.dumps(json.loads(line), sort_keys=True) in originals for line in lines)
        assert pl.read_parquet(io.BytesIO(s3_bucket.get("curated/curated.parquet"))).height == cur["selected"]
        assert json.loads(s3_bucket.get("curated/evaluation.json"))["subset_size"] == cur["selected"]
        assert cur["curated_jsonl"] == f"s3://{b}/curated/curated.jsonl"
        # The manifest names this run and the exact bytes of the pair it published.
        manifest = json.loads(s3_bucket.get("curated/curated.manifest.json"))
        assert manifest["run_id"] == result.run_id and manifest["rows"] == cur["selected"]
        for name in ("curated.jsonl", "curated.parquet"):
            body = s3_bucket.get(f"curated/{name}")
            assert manifest["files"][name] == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        assert meta(result, "evaluation_metrics")["evaluation_json"] == f"s3://{b}/curated/evaluation.json"
        # What the UI shows: plots as inline PNG images, the top clusters as a table.
        scores = meta(result, "proxy_shapley_scores")
        for value in (
            scores["score_distribution"],
            cur["selections_per_cluster"],
            meta(result, "clusters")["cluster_sizes"],
        ):
            assert value.startswith("![") and "(data:image/png;base64,iVBOR" in value
        assert (
            scores["top_clusters"].startswith("| rank | cluster | size | score | proxy |")
            and scores["top_clusters"].count("\n") >= 3
        )
        # Asset values live in S3 as Parquet (pods share no disk), not under the local home.
        keys = {o["Key"] for o in s3_bucket.client.list_objects_v2(Bucket=b, Prefix="curated/_assets/")["Contents"]}
        assert keys == {f"curated/_assets/{a.key.to_user_string()}.parquet" for a in ALL_ASSETS}
        assert not (shed_env["home"] / "assets").exists()
        # The credentials never reach the run's event log (they are EnvVars, not values).
        logs = json.dumps([str(e) for e in instance.all_logs(result.run_id)])
        assert "test-secret-key" not in logs

    # The sensor: the prefix at this listing was curated; a new object requests a run.
    lineage_db = shed_env["out"] / "lineage.duckdb"
    resources = {
        k: v for k, v in resources_for(Settings.from_env()).items() if k in ("paths", "lineage", "s3")
    }  # what the sensor uses
    ctx = dg.build_sensor_context(resources=resources)
    first = source_change_sensor.evaluate_tick(ctx)
    assert first.run_requests == [] and "already curated" in first.skip_message and lineage_db.exists()
    s3_bucket.put("incoming/part-3.jsonl", write_jsonl(tmp_path / "p3.jsonl", make_rows(280)[240:]))
    ctx2 = dg.build_sensor_context(cursor=ctx.cursor, resources=resources)
    (req,) = source_change_sensor.evaluate_tick(ctx2).run_requests
    assert req.run_config == {"ops": {"raw_dataset": {"config": {"source": f"s3://{b}/incoming/"}}}}
    cursor = json.loads(ctx2.cursor)
    assert set(cursor["files"]) == {"incoming/part-1.jsonl", "incoming/part-2.jsonl", "incoming/part-3.jsonl"}
    assert all(len(v) == 2 and isinstance(v[1], str) for v in cursor["files"].values())  # [size, etag]
    ctx3 = dg.build_sensor_context(cursor=ctx2.cursor, resources=resources)
    assert source_change_sensor.evaluate_tick(ctx3).run_requests == []  # nothing new

    # The requested run: only the new rows are new.
    with dg.instance_for_test() as instance:
        second = materialize(f"s3://{b}/incoming/", instance)
        assert second.success
        raw2 = meta(second, "raw_dataset")
        assert raw2["rows_added"] == 40 and raw2["rows_ok"] == 280


def test_prod_run_on_a_missing_bucket_fails_with_the_bucket_named(shed_env, s3_bucket, monkeypatch):
    monkeypatch.setenv("SHED_ENV", "prod")
    monkeypatch.setenv("SHED_PIPELINE_OUT", f"s3://{s3_bucket.name}/curated")
    with dg.instance_for_test() as instance:
        result = materialize("s3://no-such-bucket-anywhere/incoming/", instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "s3://no-such-bucket-anywhere: no such bucket" in str(failure.event_specific_data.error)


@pytest.mark.parametrize(
    ("env", "out", "message"),
    [
        ("staging", "", "not an environment: use one of local, prod"),
        ("prod", "/tmp/out", "SHED_ENV=prod needs SHED_PIPELINE_OUT=s3://"),
    ],
)
def test_misconfigured_environments_fail_with_the_fix(monkeypatch, env, out, message):
    monkeypatch.setenv("SHED_ENV", env)
    monkeypatch.setenv("SHED_PIPELINE_OUT", out)
    with pytest.raises(ValueError, match=message):
        resources_for(Settings.from_env())
