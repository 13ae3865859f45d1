"""Incremental refresh through the assets: a changed source recomputes only what changed.

Every test keeps one Dagster instance across runs (data versions are compared between runs) and
uses the persistent utility cache (shed_grouped estimator), as a weekly refresh would.
"""

import json
import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.core.clustering import ClusterState, clusters_from_anchors
from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.core.sources import row_id_for
from shed_pipeline.core.utilities import EvaluationStore
from shed_pipeline.resources import resources_for
from shed_pipeline.settings import Settings
from shed_pipeline_tests.synthetic import make_rows, write_jsonl

ASSETS = [
    "raw_dataset",
    "embeddings",
    "clusters",
    "proxy_shapley_scores",
    "row_values",
    "curated_subset",
    "evaluation_metrics",
]
SCORING = {"estimator": {"shed_grouped": {"permutations": 4}}}


def run_config(source, **ops):
    cfg = {
        "raw_dataset": {"source": str(source)},
        "clusters": {"n_clusters": 20},
        "proxy_shapley_scores": dict(SCORING),
    }
    cfg["evaluation_metrics"] = {"lm": False}  # the LM arms have their own test (tiny model)
    for k, v in ops.items():
        cfg.setdefault(k, {}).update(v)
    return {"ops": {k: {"config": v} for k, v in cfg.items()}}


def run(instance, source, **ops):
    result = dg.materialize(
        ALL_ASSETS,
        resources=resources_for(Settings.from_env()),
        run_config=run_config(source, **ops),
        instance=instance,
        raise_on_error=False,
    )
    assert result.success
    return result


def meta(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def versions(result):
    return {n: result.asset_materializations_for_node(n)[0].tags["dagster/data_version"] for n in ASSETS}


def subset_bytes(out):
    return {n: (out / n).read_bytes() for n in ("curated.jsonl", "curated.parquet")}


def clusters_frame(home):
    return pl.read_parquet(home / "assets" / "clusters.parquet")


@pytest.fixture
def instance(shed_env):
    with dg.instance_for_test() as inst:
        yield inst


def test_append_one_percent_recomputes_only_the_clusters_the_new_rows_join(shed_env, instance, tmp_path, monkeypatch):
    rows = make_rows(800)
    src = write_jsonl(tmp_path / "src" / "data.jsonl", rows[:792])
    first = run(instance, src)
    before = clusters_frame(shed_env["home"])
    anchors = ClusterState.load(shed_env["home"] / "state" / "clusters.parquet").anchors
    saved_state = tmp_path / "state_after_first_run"
    shutil.copytree(shed_env["home"] / "state", saved_state)
    cache = EvaluationStore(shed_env["home"] / "cache" / "utility_evaluations.duckdb")
    cached_before = cache.count()

    write_jsonl(src, rows)  # the same file with 8 rows (1%) appended
    second = run(instance, src)
    raw = meta(second, "raw_dataset")
    assert (raw["rows_added"], raw["rows_removed"], raw["rows_unchanged"], raw["previous_run"]) == (
        8,
        0,
        792,
        first.run_id,
    )
    emb = meta(second, "embeddings")
    assert emb["rows_embedded"] == 8 and emb["rows_reused"] == 792

    after = clusters_frame(shed_env["home"])
    new_ids = {row_id_for(r["instruction"], r["input"], r["output"]) for r in rows[792:]}
    joined = sorted(
        after.filter(pl.col("members").list.eval(pl.element().is_in(list(new_ids))).list.any())["cluster_id"].to_list()
    )
    cl = meta(second, "clusters")
    assert not cl["full_refit"] and cl["clusters_affected"] == len(joined) and cl["clusters_total"] == 20
    assert cl["rows_new"] == len(new_ids & set(after["members"].explode().to_list()))  # the new pool rows
    # Unaffected clusters keep their proxy and centroid; the lineage names the affected ones.
    kept = before.filter(~pl.col("cluster_id").is_in(joined)).select("cluster_id", "proxy_row_id", "centroid")
    assert kept.equals(
        after.filter(~pl.col("cluster_id").is_in(joined)).select("cluster_id", "proxy_row_id", "centroid")
    )
    store = LineageStore(shed_env["out"] / "lineage.duckdb")
    with store.connect(read_only=True) as con:
        flagged = [
            c
            for (c,) in con.execute(
                "SELECT cluster_id FROM clusters WHERE run_id = ? AND affected ORDER BY cluster_id", [second.run_id]
            ).fetchall()
        ]
    assert flagged == joined

    # The refresh equals a from-scratch clustering given the same centroids (anchors).
    pool = pl.read_parquet(shed_env["home"] / "assets" / "raw_dataset.parquet").filter(pl.col("split") == "pool")
    emb_df = pl.read_parquet(shed_env["home"] / "assets" / "embeddings.parquet")
    pool = pool.join(emb_df, on="row_id", how="left", maintain_order="left")
    state = ClusterState.load(shed_env["home"] / "state" / "clusters.parquet")
    scratch = clusters_from_anchors(pool["row_id"].to_list(), pool["embedding"].to_numpy(), anchors, state.fit)
    live = [c for c in range(scratch.k) if scratch.member_row_ids[c]]
    assert after["cluster_id"].to_list() == live
    assert after["proxy_row_id"].to_list() == [scratch.proxy_row_ids[c] for c in live]
    assert after["members"].to_list() == [scratch.member_row_ids[c] for c in live]
    np.testing.assert_array_equal(after["centroid"].to_numpy(), scratch.centroids[live])

    # Only coalitions holding a new proxy are evaluated; every other one comes from the cache.
    sc = meta(second, "proxy_shapley_scores")
    moved = before.join(after, on="cluster_id").filter(pl.col("proxy_row_id") != pl.col("proxy_row_id_right")).height
    assert sc["players_new"] == moved
    assert sc["utility_evaluations"] <= sc["coalitions_with_new_players"] and (sc["utility_evaluations"] > 0) == (
        moved > 0
    )
    assert sc["utility_cache_hits_earlier_runs"] == sc["coalitions"] - sc["utility_evaluations"] > 0
    assert cache.count() == cached_before + sc["utility_evaluations"]  # counted by the store itself

    # End to end: a fresh project that is given only the first run's anchors (and validation
    # snapshot) and the same vectors, with no utility cache, computes the same clusters, scores and
    # subset. (The vectors are shared because a text's vector can differ in its last bits with the
    # batch it was encoded in, and the refresh encoded the new rows in a batch of their own.)
    # Asset values as stored (the files' bytes differ only in the id of the run that wrote them).
    refreshed = {
        n: pl.read_parquet(shed_env["home"] / "assets" / f"{n}.parquet").to_arrow()
        for n in ("clusters", "proxy_shapley_scores")
    }
    subset = subset_bytes(shed_env["out"])
    fresh_home, fresh_out = tmp_path / "fresh_home", tmp_path / "fresh_out"
    shutil.copytree(saved_state, fresh_home / "state")
    (fresh_home / "cache").mkdir()
    shutil.copy(shed_env["home"] / "cache" / "embeddings.duckdb", fresh_home / "cache" / "embeddings.duckdb")
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(fresh_home))
    monkeypatch.setenv("SHED_PIPELINE_OUT", str(fresh_out))
    monkeypatch.setenv("SHED_PIPELINE_LINEAGE", str(fresh_out / "lineage.duckdb"))
    scratch = run(instance, src)
    assert meta(scratch, "proxy_shapley_scores")["utility_cache_hits_earlier_runs"] == 0
    assert all(
        pl.read_parquet(fresh_home / "assets" / f"{n}.parquet").to_arrow().equals(value, check_metadata=True)
        for n, value in refreshed.items()
    )
    assert subset_bytes(fresh_out) == subset
    assert {n: versions(scratch)[n] for n in ASSETS[2:]} == {n: versions(second)[n] for n in ASSETS[2:]}


def test_rerun_with_nothing_changed_does_no_work_and_changes_nothing(shed_env, instance, source_file):
    first = run(instance, source_file)
    out = shed_env["out"]
    before = subset_bytes(out)
    second = run(instance, source_file)
    assert meta(second, "embeddings")["rows_embedded"] == 0 and meta(second, "embeddings")["model_loaded"] is False
    cl = meta(second, "clusters")
    assert (
        not cl["full_refit"] and cl["clusters_affected"] == 0 and cl["refit_reason"] == "no change since the last run"
    )
    sc = meta(second, "proxy_shapley_scores")
    assert sc["utility_evaluations"] == 0 and sc["utility_cache_hits"] > 0 and sc["players_new"] == 0
    assert versions(second) == versions(first)
    assert subset_bytes(out) == before
    raw = meta(second, "raw_dataset")
    assert (raw["rows_added"], raw["rows_removed"]) == (0, 0)


def test_automation_reacts_to_data_version_changes_only(shed_env, instance, tmp_path):
    rows = make_rows(200)
    src = write_jsonl(tmp_path / "src" / "data.jsonl", rows[:190])
    defs = dg.Definitions(assets=ALL_ASSETS, resources=resources_for(Settings.from_env()))
    cursor = None

    def requested():
        nonlocal cursor
        res = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = res.cursor
        return [n for n in ASSETS if res.get_num_requested(dg.AssetKey(n))]

    assert requested() == []  # nothing materialized yet: nothing to react to
    run(instance, src)
    assert requested() == []  # a whole-graph run updated every asset itself: no follow-up run
    raw_only = {"ops": {"raw_dataset": {"config": {"source": str(src)}}}}
    # Re-reading an unchanged source gives raw_dataset the same data version: nothing downstream runs.
    dg.materialize(
        ALL_ASSETS,
        resources=resources_for(Settings.from_env()),
        run_config=raw_only,
        instance=instance,
        selection=["raw_dataset"],
    )
    assert requested() == []
    write_jsonl(src, rows)
    dg.materialize(
        ALL_ASSETS,
        resources=resources_for(Settings.from_env()),
        run_config=raw_only,
        instance=instance,
        selection=["raw_dataset"],
    )
    # Every downstream asset reads raw_dataset directly, so one tick requests all six, in one run.
    assert requested() == ASSETS[1:]
    assert requested() == []  # requested once, not again on the next tick


def test_edits_and_deletions_balance_and_lineage_shows_the_removals(shed_env, instance, tmp_path):
    rows = make_rows(400)
    src = write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    first = run(instance, src)
    edited = [dict(r, output=r["output"] + " (revised)") for r in rows[:3]]
    changed = edited + rows[3:395]  # 3 rows edited in place, the last 5 deleted
    write_jsonl(src, changed)
    second = run(instance, src)
    raw = meta(second, "raw_dataset")
    assert (
        raw["rows_previous"],
        raw["rows_added"],
        raw["rows_removed"],
        raw["rows_edited"],
        raw["rows_unchanged"],
    ) == (400, 3, 8, 3, 392)
    assert (
        raw["rows_previous"] == raw["rows_unchanged"] + raw["rows_removed"]
        and raw["rows_ok"] == raw["rows_unchanged"] + raw["rows_added"]
    )
    # The edits changed responses, not prompts: no text to encode, the model is not even loaded.
    assert meta(second, "embeddings")["rows_embedded"] == 0 and meta(second, "embeddings")["model_loaded"] is False
    store = LineageStore(shed_env["out"] / "lineage.duckdb")
    with store.connect(read_only=True) as con:
        removed = con.execute(
            "SELECT row_id, counterpart, source_locator FROM row_changes WHERE run_id = ? AND change = 'removed' "
            "ORDER BY source_locator",
            [second.run_id],
        ).fetchall()
    old_ids = [row_id_for(r["instruction"], r["input"], r["output"]) for r in rows]
    new_ids = [row_id_for(r["instruction"], r["input"], r["output"]) for r in edited]
    assert {r[0] for r in removed} == set(old_ids[:3] + old_ids[395:])
    assert {r[0]: r[1] for r in removed if r[1]} == dict(
        zip(old_ids[:3], new_ids, strict=True)
    )  # an edit names its replacement
    why = store.why(old_ids[0])
    assert why["status"] == "removed" and why["replaced_by"] == new_ids[0] and why["removed_in_run"] == second.run_id
    assert store.why(old_ids[399])["status"] == "removed" and store.why(old_ids[399]).get("replaced_by") is None
    # Removed pool rows left their clusters; the run table counts the changes.
    (latest,) = [r for r in store.runs() if r.run_id == second.run_id]
    assert (latest.rows_added, latest.rows_removed) == (3, 8)
    members = set(clusters_frame(shed_env["home"])["members"].explode().to_list())
    assert not members & set(old_ids[:3] + old_ids[395:])
    assert first.run_id != second.run_id


def test_full_refit_gives_the_same_subset_as_a_fresh_project(shed_env, instance, tmp_path, monkeypatch):
    rows = make_rows(600)
    src = write_jsonl(tmp_path / "src" / "data.jsonl", rows[:590])
    run(instance, src)
    write_jsonl(src, rows)
    refit = run(instance, src, clusters={"full_refit": True})
    cl = meta(refit, "clusters")
    assert cl["full_refit"] and cl["refit_reason"] == "a full re-fit was asked for" and cl["clusters_affected"] == 20
    mine = subset_bytes(shed_env["out"])
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path / "fresh_home"))
    monkeypatch.setenv("SHED_PIPELINE_OUT", str(tmp_path / "fresh_out"))
    monkeypatch.setenv("SHED_PIPELINE_LINEAGE", str(tmp_path / "fresh_out" / "lineage.duckdb"))
    fresh = run(instance, src)
    assert meta(fresh, "clusters")["refit_reason"] == "no previous clustering"
    assert subset_bytes(tmp_path / "fresh_out") == mine
    assert (
        json.loads((tmp_path / "fresh_out" / "evaluation.json").read_text())["subset_size"]
        == json.loads((shed_env["out"] / "evaluation.json").read_text())["subset_size"]
    )
