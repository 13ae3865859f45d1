"""proxy_shapley_scores with `workers` > 1: the utility evaluations fan out over steps (Dagster dynamic
outputs; processes under the multiprocess executor) that meet at the evaluation cache, and the result
is the one-step result."""

import dagster as dg
import polars as pl

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.resources import resources_for
from shed_pipeline.settings import Settings
from shed_pipeline_tests.assets.test_pipeline import meta, run_config
from shed_pipeline_tests.assets.test_shards import use_project

BANZHAF = {"utility": {"knn": {}}, "estimator": {"banzhaf_msr": {"samples": 60}}}


def fan_out_job():
    """The curation job, reconstructed in each step process (its own function: Dagster caches a job
    by the function that builds it, and other tests build it under other settings)."""
    from shed_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def("shed_curation_job")


def outputs(project: dict) -> dict:
    return {
        "scores": pl.read_parquet(project["home"] / "assets" / "proxy_shapley_scores.parquet"),
        "curated": (project["out"] / "curated.jsonl").read_bytes(),
    }


def test_valuation_fanned_out_over_workers_equals_one_step_and_each_coalition_is_evaluated_once(
    shed_env, source_file, monkeypatch
):
    root = shed_env["tmp"]
    one = use_project(monkeypatch, root, "one_step")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ALL_ASSETS,
            resources=resources_for(Settings.from_env()),
            run_config=run_config(source_file, proxy_shapley_scores=BANZHAF),
            instance=instance,
        )
    serial = meta(result, "proxy_shapley_scores")
    assert serial["workers"] == 1 and serial["utility_evaluations"] == 61  # 60 samples and U(all)
    expected = outputs(one)

    fanned = use_project(monkeypatch, root, "three_workers", vectors_from=one)
    cfg = run_config(source_file, proxy_shapley_scores={**BANZHAF, "workers": 3})
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(fan_out_job), instance=instance, run_config=cfg)
        assert result.success
        events = [r.dagster_event for r in instance.all_logs(result.run_id) if r.dagster_event is not None]
    shares = {
        ev.step_key: {k: v.value for k, v in ev.event_specific_data.metadata.items()}
        for ev in events
        if ev.event_type_value == "STEP_OUTPUT"
        and ev.step_key.startswith("proxy_shapley_scores.evaluate_share_of_coalitions")
    }
    assert sorted(shares) == [f"proxy_shapley_scores.evaluate_share_of_coalitions[share_{i}_of_3]" for i in range(3)]
    assert all(s["utility_evaluations"] > 0 for s in shares.values())  # every worker did part of the work
    # Counts balance: the shares evaluated the one-step run's coalitions between them, each once ...
    assert sum(s["utility_evaluations"] for s in shares.values()) == serial["utility_evaluations"]
    for s in shares.values():
        assert s["coalitions"] == s["utility_evaluations"] + s["utility_cache_hits"] + s["coalitions_of_other_shares"]
    # ... and the value step found every one of them in the cache.
    (mat,) = [
        ev.event_specific_data.materialization
        for ev in events
        if ev.event_type_value == "ASSET_MATERIALIZATION" and ev.asset_key == dg.AssetKey("proxy_shapley_scores")
    ]
    valued = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert (
        valued["workers"] == 3 and valued["utility_evaluations"] == 0 and valued["coalitions"] == serial["coalitions"]
    )
    assert (
        valued["validation_snapshot_renewed"]
        and valued["validation_snapshot_reason"] == serial["validation_snapshot_reason"]
    )  # taken by the plan step of this run
    got = outputs(fanned)
    assert got["scores"].equals(expected["scores"]) and got["curated"] == expected["curated"]


def test_a_worker_count_out_of_range_is_one_clear_error(shed_env, source_file):
    from shed_pipeline_tests.assets.test_pipeline import materialize

    bad = materialize(source_file, proxy_shapley_scores={"workers": 0})
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    assert (
        failure.step_key == "proxy_shapley_scores.plan_valuation_shares"
        and "proxy_shapley_scores.workers must be a whole number from 1 to 1024, got 0"
        in failure.step_failure_data.error.to_string()
    )
