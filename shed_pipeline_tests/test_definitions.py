import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.definitions import build_definitions, defs
from shed_pipeline.gpu_steps import DEFAULT_GPU_STEP_K8S, gpu_op_names
from shed_pipeline.schedules import daily_curation_schedule

ASSETS = list(ASSET_NAMES)
DEPENDENCIES = {
    "raw_dataset": set(),
    "embeddings": {"raw_dataset"},
    "clusters": {"raw_dataset", "embeddings"},
    "proxy_shapley_scores": {"raw_dataset", "embeddings", "clusters"},
    "row_values": {"raw_dataset", "embeddings"},
    "curated_subset": {"raw_dataset", "embeddings", "clusters", "proxy_shapley_scores", "row_values"},
    "evaluation_metrics": {"raw_dataset", "embeddings", "clusters", "row_values", "curated_subset"},
}


def test_definitions_load(shed_env):
    dg.Definitions.validate_loadable(defs())


def test_importing_the_definitions_reads_no_environment(tmp_path):
    """The CLI imports build_definitions under an environment its flags override (SHED_ENV=prod with
    --out s3://...): the import must not build the environment's definitions; loading them does."""
    env = {**os.environ, "SHED_ENV": "prod", "SHED_PIPELINE_HOME": str(tmp_path)}
    env.pop("SHED_PIPELINE_OUT", None)
    load = "import shed_pipeline.definitions as d; print('imported', flush=True); d.defs()"
    done = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "imported\n"
    assert "SHED_ENV=prod needs SHED_PIPELINE_OUT" in done.stderr


def test_seven_assets_form_one_lineage_graph_grouped_by_stage(shed_env):
    graph = build_definitions().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(ASSETS)
    deps = {a: {p.to_user_string() for p in graph.get(dg.AssetKey(a)).parent_keys} for a in ASSETS}
    assert deps == DEPENDENCIES
    groups = {a: graph.get(dg.AssetKey(a)).group_name for a in ASSETS}
    assert groups == {
        "raw_dataset": "ingest",
        "embeddings": "representation",
        "clusters": "representation",
        "proxy_shapley_scores": "valuation",
        "row_values": "valuation",
        "curated_subset": "selection",
        "evaluation_metrics": "evaluation",
    }
    assert all(graph.get(dg.AssetKey(a)).description for a in ASSETS)


def test_job_and_stopped_daily_schedule():
    d = build_definitions()
    assert d.resolve_job_def("shed_curation_job") is not None
    assert daily_curation_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert daily_curation_schedule.cron_schedule == "0 3 * * *"


def test_schedule_requests_a_run_of_the_curation_job():
    ctx = dg.build_schedule_context(scheduled_execution_time=None)
    result = daily_curation_schedule.evaluate_tick(ctx)
    assert len(result.run_requests) == 1
    assert daily_curation_schedule.job_name == "shed_curation_job"


def test_sensors_are_registered_with_safe_defaults():
    d = build_definitions()
    source = d.resolve_sensor_def("source_change_sensor")
    assert source.default_status == dg.DefaultSensorStatus.STOPPED and source.job_name == "shed_curation_job"
    auto = d.resolve_sensor_def("refresh_automation_sensor")
    assert auto.default_status == dg.DefaultSensorStatus.RUNNING


def test_steps_that_use_the_compute_device_share_the_gpu_pool():
    from shed_pipeline.assets import ALL_ASSETS

    # A graph-backed asset (proxy_shapley_scores: plan, shares, value) by the pool of the ops that
    # use the device; its planning op only reads the snapshot and opens shares.
    def device_ops(a):
        if isinstance(a.node_def, dg.GraphDefinition):
            return [op for op in a.node_def.node_defs if "compute" in op.required_resource_keys]
        return [a.op]

    pools = {a.key.to_user_string(): {op.pool for op in device_ops(a)} for a in ALL_ASSETS}
    pools = {k: v.pop() for k, v in pools.items() if len(v) == 1}
    assert pools == {
        "raw_dataset": "duckdb",
        "embeddings": "gpu",
        "clusters": "gpu",
        "proxy_shapley_scores": "gpu",
        "row_values": "gpu",
        "curated_subset": "duckdb",
        "evaluation_metrics": "gpu",
    }
    (scores,) = [a for a in ALL_ASSETS if a.key == dg.AssetKey("proxy_shapley_scores")]
    assert [(op.name, op.pool) for op in scores.node_def.node_defs] == [
        ("plan_valuation_shares", None),
        ("evaluate_share_of_coalitions", "gpu"),
        ("value_cluster_proxies", "gpu"),
    ]
    tagged = {a.key.to_user_string() for a in ALL_ASSETS if a.tags_by_key[a.key].get("shed/gpu") == "true"}
    assert tagged == {k for k, p in pools.items() if p == "gpu"}


def test_sharded_embeddings_are_partitions_and_every_run_of_the_job_covers_all_of_them(shed_env, monkeypatch):
    from shed_pipeline.executors import shares_project

    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", "4")
    d = build_definitions()
    graph = d.resolve_asset_graph()
    assert graph.get(dg.AssetKey("embeddings")).partitions_def.get_partition_keys() == ["0", "1", "2", "3"]
    assert all(graph.get(dg.AssetKey(a)).partitions_def is None for a in ASSETS if a != "embeddings")
    job = d.resolve_job_def("shed_curation_job")
    assert (
        job.run_tags["dagster/asset_partition_range_start"] == "0"
        and job.run_tags["dagster/asset_partition_range_end"] == "3"
    )
    assert job.run_tags["shed/project"] == job.tags["shed/project"]  # the run queue limit still applies
    monkeypatch.delenv("SHED_EMBEDDING_SHARDS")
    assert build_definitions().resolve_asset_graph().get(dg.AssetKey("embeddings")).partitions_def is None
    assert (
        "dagster/asset_partition_range_start" not in build_definitions().resolve_job_def("shed_curation_job").run_tags
    )

    # Only runs of embeddings shards share the project folder.
    def run(selection, tags):
        return dg.DagsterRun(job_name="j", run_id="r", asset_selection={dg.AssetKey(a) for a in selection}, tags=tags)

    assert shares_project(run(["embeddings"], {"dagster/partition": "2"}))
    assert shares_project(
        run(["embeddings"], {"dagster/asset_partition_range_start": "0", "dagster/asset_partition_range_end": "3"})
    )
    assert not shares_project(run(["embeddings"], {}))  # unsharded embeddings: one file, rewritten whole
    assert not shares_project(run(["embeddings", "clusters"], {"dagster/partition": "2"}))
    assert not shares_project(
        dg.DagsterRun(job_name="j", run_id="r", tags={"dagster/partition": "2"})
    )  # no selection: the whole job


SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_specs.json"


def gpus_asked(op, gpu_ops: set[str]) -> int | None:
    """The GPUs a step's pod asks Kubernetes for under the k8s executor (with the default GPU pod)."""
    if op.name not in gpu_ops:
        return None
    return DEFAULT_GPU_STEP_K8S["container_config"]["resources"]["limits"]["nvidia.com/gpu"]


def asset_specs(definitions: dg.Definitions) -> dict:
    """What a reviewer of a change to the asset graph should see: each asset's group, upstream
    assets, partitioning, tags, and each of its ops' pool, tags (names; the GPU pod config by its
    request) and resources; the jobs, schedules and sensors by name."""
    graph = definitions.resolve_asset_graph()
    gpu_ops = set(gpu_op_names(node.assets_def for node in graph.asset_nodes))
    specs = {}
    for name in ASSET_NAMES:
        node = graph.get(dg.AssetKey(name))
        assets_def = node.assets_def
        ops = assets_def.node_def.node_defs if isinstance(assets_def.node_def, dg.GraphDefinition) else [assets_def.op]
        specs[name] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "tags": dict(sorted(node.tags.items())),
            "ops": {
                op.name: {
                    "pool": op.pool,
                    "tags": sorted(op.tags),
                    "gpus": gpus_asked(op, gpu_ops),
                    "resources": sorted(op.required_resource_keys),
                }
                for op in sorted(ops, key=lambda o: o.name)
            },
        }
    job = definitions.resolve_job_def("shed_curation_job")
    return {
        "assets": specs,
        "job": {"name": job.name, "tags": sorted(job.tags), "run_tags": sorted(job.run_tags)},
        "schedules": sorted(s.name for s in definitions.schedules or []),
        "sensors": sorted(s.name for s in definitions.sensors or []),
        "resources": sorted(definitions.resources or {}),
    }


def test_the_asset_specs_match_the_snapshot(shed_env):
    """Keys, groups, dependencies, pools and tags of every asset and op, against a reviewed snapshot.
    A change to the graph is deliberate: write the new snapshot with
    `UPDATE_SNAPSHOTS=1 pytest shed_pipeline_tests/test_definitions.py` and review its diff."""
    got = asset_specs(build_definitions())
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text())
