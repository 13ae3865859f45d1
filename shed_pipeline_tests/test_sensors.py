"""source_change_sensor through Dagster's sensor test context: cursor, skip reasons, run requests."""

import json

import dagster as dg

from shed_pipeline.local_servers import free_port
from shed_pipeline.resources import LineageResource, PathsResource, s3_resource
from shed_pipeline.sensors import source_change_sensor
from shed_pipeline.settings import Settings
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def tick(tmp_path, source, cursor=None, lineage_db=None):
    ctx = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "paths": PathsResource(home=str(tmp_path / "home"), source=str(source)),
            "lineage": LineageResource(path=str(lineage_db or tmp_path / "lineage.duckdb")),
            "s3": s3_resource(Settings.from_env()),
        },
    )
    result = source_change_sensor.evaluate_tick(ctx)
    return result, ctx.cursor


def test_requests_a_run_only_when_the_content_changes(tmp_path):
    folder = tmp_path / "src"
    rows = make_rows(30)
    write_jsonl(folder / "a.jsonl", rows[:20])
    first, cursor = tick(tmp_path, folder)
    (req,) = first.run_requests
    assert req.run_config == {"ops": {"raw_dataset": {"config": {"source": str(folder)}}}}
    assert req.tags["shed/trigger"] == "source_change_sensor"
    same, cursor2 = tick(tmp_path, folder, cursor)
    assert same.run_requests == [] and "source unchanged" in same.skip_message
    # Rewriting the same bytes requests nothing; a new file dropped into the folder does.
    write_jsonl(folder / "a.jsonl", rows[:20])
    rewritten, cursor3 = tick(tmp_path, folder, cursor2)
    assert rewritten.run_requests == []
    write_jsonl(folder / "b.jsonl", rows[20:])
    grown, cursor4 = tick(tmp_path, folder, cursor3)
    (req2,) = grown.run_requests
    assert req2.tags["shed/source_fingerprint"] != req.tags["shed/source_fingerprint"]
    assert json.loads(cursor4)["fingerprint"] == req2.tags["shed/source_fingerprint"]
    # Back to the first content: a new run key (an earlier key would be deduplicated by Dagster).
    (folder / "b.jsonl").unlink()
    back, _ = tick(tmp_path, folder, cursor4)
    (req3,) = back.run_requests
    assert req3.tags["shed/source_fingerprint"] == req.tags["shed/source_fingerprint"] and req3.run_key != req.run_key


def test_first_poll_skips_content_a_run_has_already_curated(shed_env, tmp_path):
    """The sensor's fingerprint is the one raw_dataset records, so a run and the watcher agree."""
    from shed_pipeline.assets import ALL_ASSETS
    from shed_pipeline.resources import resources_for
    from shed_pipeline.settings import Settings

    folder = tmp_path / "src"
    write_jsonl(folder / "a.jsonl", make_rows(40))
    lineage_db = shed_env["out"] / "lineage.duckdb"
    fresh, _ = tick(tmp_path, folder, lineage_db=lineage_db)
    assert len(fresh.run_requests) == 1
    with dg.instance_for_test() as instance:
        run = {"ops": {"raw_dataset": {"config": {"source": str(folder)}}}}
        assert dg.materialize(
            ALL_ASSETS,
            selection=["raw_dataset"],
            resources=resources_for(Settings.from_env()),
            run_config=run,
            instance=instance,
        ).success
    skipped, cursor = tick(tmp_path, folder, lineage_db=lineage_db)
    assert skipped.run_requests == [] and "already curated" in skipped.skip_message
    assert json.loads(cursor)["fingerprint"] == fresh.run_requests[0].tags["shed/source_fingerprint"]


def test_no_source_or_unreadable_source_is_a_skip_with_a_reason(tmp_path):
    none, _ = tick(tmp_path, "")
    assert "set SHED_PIPELINE_SOURCE" in none.skip_message
    gone, cursor = tick(tmp_path, tmp_path / "missing")
    assert (
        "cannot read the source" in gone.skip_message
        and "no such file or folder" in gone.skip_message
        and cursor is None
    )


def test_an_unreachable_s3_source_is_one_attempt_and_a_skip_with_the_cause(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    result, cursor = tick(tmp_path, "s3://shed-data/incoming/", cursor='{"keep": 1}')
    assert (
        "cannot read the source: s3://shed-data/incoming/: cannot list objects after 1 attempts "
        "(EndpointConnectionError" in result.skip_message
    )
    assert not result.run_requests and cursor == '{"keep": 1}'  # the next tick tries again from the same cursor
