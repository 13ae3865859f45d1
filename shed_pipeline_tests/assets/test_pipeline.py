"""The six assets materialized together on a temporary instance, on local data."""

import json
import math

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.resources import resources_for
from shed_pipeline.settings import Settings
from shed_pipeline.summaries import SUMMARIES
from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl


def run_config(source, **ops):
    cfg = {"raw_dataset": {"source": str(source)}, "clusters": {"n_clusters": 12}}
    cfg["evaluation_metrics"] = {"lm": False}  # the LM arms have their own test (tiny model)
    for k, v in ops.items():
        cfg.setdefault(k, {}).update(v)
    return {"ops": {k: {"config": v} for k, v in cfg.items()}}


def materialize(source, **ops):
    with dg.instance_for_test() as instance:
        return dg.materialize(
            ALL_ASSETS,
            resources=resources_for(Settings.from_env()),
            run_config=run_config(source, **ops),
            instance=instance,
            raise_on_error=False,
        )


def meta(result, node):
    (mat,) = result.asset_materializations_for_node(node)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_pipeline_end_to_end_counts_balance_and_lineage_is_complete(shed_env, source_file):
    result = materialize(source_file)
    assert result.success
    raw = meta(result, "raw_dataset")
    assert raw["rows_in"] == 248 and raw["rows_ok"] == 240 and raw["rows_quarantined"] == 8
    assert raw["rows_in"] == raw["rows_ok"] + raw["rows_quarantined"]
    assert raw["rows_pool"] + raw["rows_validation"] + raw["rows_test"] == raw["rows_ok"]
    emb = meta(result, "embeddings")
    assert emb["rows_embedded"] == 240 and emb["dim"] == 384
    cl = meta(result, "clusters")
    assert cl["n_clusters"] == 12 and cl["nmi_vs_task"] > 0.5
    cur = meta(result, "curated_subset")
    assert cur["selected"] == round(0.1 * raw["rows_pool"])
    out = shed_env["out"]
    lines = (out / "curated.jsonl").read_text().splitlines()
    assert len(lines) == cur["selected"]
    originals = {json.dumps(r, sort_keys=True) for r in make_rows(240)}
    assert all(json.dumps(json.loads(line), sort_keys=True) in originals for line in lines)  # input's own schema
    assert pl.read_parquet(out / "curated.parquet").columns == ["instruction", "input", "output", "task"]
    ev = meta(result, "evaluation_metrics")
    assert ev["subset_size"] == cur["selected"] and 0 <= ev["utility_subset"] <= 1
    with duckdb.connect(str(out / "lineage.duckdb"), read_only=True) as con:
        run = result.run_id
        count = lambda t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run]).fetchone()[0]  # noqa: E731
        assert count("rows") == 240 and count("quarantine") == 8 and count("clusters") == 12
        assert (
            count("memberships") == raw["rows_pool"]
            and count("scores") == 12
            and count("selections") == cur["selected"]
        )
        assert con.execute("SELECT source_fingerprint IS NOT NULL FROM runs WHERE run_id = ?", [run]).fetchone()[0]
        # Every asset, embeddings too, is recorded with its summary and the runs of exactly the assets
        # it depends on (from the step's context, not spelled out by each asset).
        records = {
            asset: (json.loads(summary), json.loads(inputs))
            for asset, summary, inputs in con.execute(
                "SELECT asset, summary, inputs FROM asset_runs WHERE run_id = ?", [run]
            ).fetchall()
        }
    assert set(records) == set(ASSET_NAMES)
    graph = dg.Definitions(assets=ALL_ASSETS, resources=resources_for(Settings.from_env())).resolve_asset_graph()
    for name in ASSET_NAMES:
        recorded, inputs = records[name]
        upstream = {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}
        assert inputs == dict.fromkeys(upstream, run), name
        # What lineage records is what the UI shows (which adds plots and tables of its own).
        summary = SUMMARIES[name].from_metadata(meta(result, name))
        shown = json.loads(json.dumps(summary.metadata(), default=str))
        assert summary.seconds > 0 and {k: shown.get(k) for k in recorded} == recorded, name
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"quarantine_within_bound": True, "subset_is_valid": True}


def test_same_input_and_config_give_byte_identical_subsets(shed_env, source_file, tmp_path, monkeypatch):
    for method in ("qwcs",):
        assert materialize(source_file, curated_subset={"method": {method: {}}}).success
        first = {n: (shed_env["out"] / n).read_bytes() for n in ("curated.jsonl", "curated.parquet")}
        # A fresh project folder (no caches) and a fresh output folder.
        monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path / "home2"))
        monkeypatch.setenv("SHED_PIPELINE_OUT", str(tmp_path / "out2"))
        monkeypatch.setenv("SHED_PIPELINE_LINEAGE", str(tmp_path / "out2" / "lineage.duckdb"))
        assert materialize(source_file, curated_subset={"method": {method: {}}}).success
        assert {n: (tmp_path / "out2" / n).read_bytes() for n in first} == first


def test_second_run_reuses_every_embedding(shed_env, source_file):
    assert materialize(source_file).success
    again = materialize(
        source_file,
        proxy_shapley_scores={"estimator": {"shed_grouped": {"permutations": 3}}},
        curated_subset={"method": {"random": {}}},
    )
    assert again.success
    assert meta(again, "embeddings")["rows_embedded"] == 0 and meta(again, "embeddings")["rows_reused"] == 240
    sc = meta(again, "proxy_shapley_scores")
    assert (
        sc["estimator"] == "shed_grouped" and sc["utility_evaluations"] + sc["utility_cache_hits"] == 3 * (1 + 12) + 1
    )  # + the grand coalition (utility_all_proxies)


def test_quarantine_over_the_bound_blocks_downstream_assets(shed_env, tmp_path):
    src = write_jsonl(tmp_path / "bad.jsonl", make_rows(40), BAD_LINES * 3)  # 18 of 58 bad
    result = materialize(src, raw_dataset={"max_quarantine_fraction": 0.2}, clusters={"n_clusters": 3})
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["quarantined_fraction"].value == pytest.approx(18 / 58)
    assert result.asset_materializations_for_node("curated_subset") == []


@pytest.mark.parametrize("estimator", ["tmc", "banzhaf_msr", "exact"])
def test_other_estimators_run_in_the_pipeline(shed_env, source_file, estimator):
    result = materialize(
        source_file,
        clusters={"n_clusters": 6},
        proxy_shapley_scores={"estimator": {estimator: {"permutations": 4} if estimator == "tmc" else {}}},
    )
    assert result.success
    assert meta(result, "proxy_shapley_scores")["players"] == 6


def test_lm_utility_runs_in_the_pipeline_and_its_evaluations_are_cached(shed_env, source_file, tmp_path):
    """The real code path of the `lm` utility on a tiny Llama built here (random weights, offline)."""
    from shed_pipeline_tests.tiny_lm import build_tiny_lm

    model_dir = build_tiny_lm(tmp_path / "tiny_llama")
    scoring = {
        "utility": {
            "lm": {"model": str(model_dir), "steps": 2, "validation_rows": 4, "max_tokens": 64, "batch_size": 4}
        },
        "estimator": {"banzhaf_msr": {"samples": 6}},
    }
    first = materialize(source_file, clusters={"n_clusters": 4}, proxy_shapley_scores=scoring)
    assert first.success
    sc = meta(first, "proxy_shapley_scores")
    assert sc["utility"] == "lm" and sc["players"] == 4 and sc["validation_rows"] == 4
    assert 0 < sc["utility_evaluations"] <= 6 + 1  # distinct samples, plus the grand coalition
    again = materialize(source_file, clusters={"n_clusters": 4}, proxy_shapley_scores=scoring)
    assert meta(again, "proxy_shapley_scores")["utility_evaluations"] == 0
    assert pl.read_parquet(shed_env["home"] / "assets" / "proxy_shapley_scores.parquet")["score"].is_finite().all()
    bad = materialize(
        source_file,
        clusters={"n_clusters": 4},
        proxy_shapley_scores={"utility": {"lm": {"model": str(model_dir)}}, "estimator": {"knn_exact": {}}},
    )
    from shed_pipeline.cli import failure_message

    assert not bad.success and "closed form of the knn utility" in failure_message(bad.all_events)


def test_probe_utility_ts_chains_and_auto_size_in_the_pipeline(shed_env, source_file, tmp_path):
    """TS-DShapley's path end to end on a tiny Llama: LM features (cached), the probe utility, subset
    chains, and the removal-index rule choosing how many clusters curated_subset drops."""
    from shed_pipeline_tests.tiny_lm import build_tiny_lm

    model_dir = build_tiny_lm(tmp_path / "tiny_llama")
    scoring = {
        "utility": {"probe": {"model": str(model_dir), "dims": 4}},
        "estimator": {"ts_chains": {"chain_size": 4, "chain_rounds": 3, "permutations": 2}},
        "removal_points": 5,
    }
    first = materialize(source_file, proxy_shapley_scores=scoring, curated_subset={"auto_size": True})
    assert first.success
    sc = meta(first, "proxy_shapley_scores")
    assert (
        sc["utility"] == "probe"
        and sc["estimator"] == "ts_chains"
        and sc["players"] == 12
        and sc["estimator_rounds"] == 3
    )
    scores = pl.read_parquet(shed_env["home"] / "assets" / "proxy_shapley_scores.parquet")
    dropped = scores.filter(pl.col("dropped_by_removal_rule"))
    assert dropped.height == sc["removal_best"] <= 6
    if dropped.height:  # the dropped clusters are the lowest-valued ones
        assert dropped["score"].max() <= scores.filter(~pl.col("dropped_by_removal_rule"))["score"].min()
    cur = meta(first, "curated_subset")
    clusters = pl.read_parquet(shed_env["home"] / "assets" / "clusters.parquet")
    kept_rows = clusters.filter(~pl.col("cluster_id").is_in(dropped["cluster_id"].implode()))["size"].sum()
    assert cur["auto_size"] and cur["selected"] == cur["target_size"] == kept_rows
    with duckdb.connect(str(shed_env["out"] / "lineage.duckdb"), read_only=True) as con:
        curve = con.execute(
            "SELECT removed, chosen FROM removal_curve WHERE run_id = ? ORDER BY removed", [first.run_id]
        ).fetchall()
        reasons = [
            r for (r,) in con.execute("SELECT reason FROM selections WHERE run_id = ?", [first.run_id]).fetchall()
        ]
    assert [r for r, _ in curve] == [0, 2, 3, 4, 6] and [r for r, c in curve if c] == [sc["removal_best"]]
    assert all(
        r.startswith(f"auto size: the removal-index rule dropped the {dropped.height} lowest-valued of 12 clusters")
        for r in reasons
    )
    again = materialize(source_file, proxy_shapley_scores=scoring, curated_subset={"auto_size": True})
    assert meta(again, "proxy_shapley_scores")["utility_evaluations"] == 0  # every coalition cached, features too
    assert (
        pl.read_parquet(shed_env["home"] / "assets" / "proxy_shapley_scores.parquet")["score"].to_list()
        == scores["score"].to_list()
    )
    no_rule = materialize(
        source_file, proxy_shapley_scores={**scoring, "removal_points": 0}, curated_subset={"auto_size": True}
    )
    from shed_pipeline.cli import failure_message

    assert not no_rule.success and "removal_points > 0" in failure_message(no_rule.all_events)


def test_lm_evaluation_arms_in_the_pipeline(shed_env, source_file, tmp_path, monkeypatch):
    """evaluation_metrics with the LM arms on a tiny Llama and a bigbench-shaped archive built here."""
    from shed_pipeline_tests.core.evaluation.test_benchmarks import quiz, write_archive
    from shed_pipeline_tests.tiny_lm import build_tiny_lm

    monkeypatch.setenv("SHED_BIGBENCH_ARCHIVE", str(write_archive(tmp_path / "bigbench.tar.gz", {"quiz": quiz(10)})))
    model_dir = build_tiny_lm(tmp_path / "tiny_llama")
    evaluation = {
        "lm": True,
        "lm_model": str(model_dir),
        "epochs": 0.2,
        "lm_batch_size": 4,
        "lm_max_tokens": 48,
        "test_rows": 6,
        "benchmarks": ["quiz"],
        "benchmark_items": 4,
        "random_seeds": 3,
        "include_full_pool": True,
        "baselines": ["longest", "ifd"],
    }
    result = materialize(source_file, evaluation_metrics=evaluation)
    assert result.success
    ev = meta(result, "evaluation_metrics")
    for arm in ("base", "curated", "longest", "random", "full_pool"):
        assert np.isfinite(ev[f"lm_test_split_{arm}_mean"]) and 0 <= ev[f"lm_quiz_{arm}_mean"] <= 1
    assert ev["lm_test_split_base_std"] == 0 and ev["baselines"] == ["longest"]  # ifd: no ifd row values, skipped
    assert 0 <= ev["baseline_longest_utility"] <= 1 and "| longest | benchmarks_mean |" in ev["lm_comparison"]
    with duckdb.connect(str(shed_env["out"] / "lineage.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT arm, count(*), min(subset_size), min(steps), max(steps) FROM evaluation_arms WHERE run_id = ? "
            "GROUP BY arm ORDER BY arm",
            [result.run_id],
        ).fetchall()
        compared = con.execute(
            "SELECT arm, benchmark, n FROM evaluation_comparisons WHERE run_id = ? ORDER BY arm, benchmark",
            [result.run_id],
        ).fetchall()
    n, pool = rows[1][2], rows[2][2]
    steps = lambda size: math.ceil(0.2 * size / 4)  # noqa: E731 (epochs over each arm's own rows)
    assert rows == [
        ("base", 2, 0, 0, 0),
        ("curated", 2, n, steps(n), steps(n)),
        ("full_pool", 2, pool, steps(pool), steps(pool)),
        ("longest", 2, n, steps(n), steps(n)),
        ("random", 6, n, steps(n), steps(n)),
    ]  # 3 random seeds
    assert compared == [
        (a, b, k)
        for a in ("base", "curated", "full_pool", "longest")
        for b, k in (("benchmarks_mean", 4), ("quiz", 4), ("test_split", 6))
    ]
    report = json.loads((shed_env["out"] / "evaluation.json").read_text())
    assert (
        report["lm"]["training"]["epochs"] == 0.2
        and report["lm"]["benchmark_items"] == {"quiz": 4}
        and report["lm"]["test_rows"] == 6
    )
    assert len(report["lm"]["comparisons"]) == 12 and all(
        len(r["scores"]) == (6 if r["benchmark"] == "test_split" else 4) for r in report["lm"]["records"]
    )
    again = materialize(source_file, evaluation_metrics=evaluation)  # nothing changed: every arm from the cache
    assert meta(again, "evaluation_metrics")["lm_test_split_curated_mean"] == ev["lm_test_split_curated_mean"]


def test_lm_utility_can_score_multiple_choice_accuracy_like_shed(shed_env, source_file, tmp_path, monkeypatch):
    from shed_pipeline_tests.core.evaluation.test_benchmarks import quiz, write_archive
    from shed_pipeline_tests.tiny_lm import build_tiny_lm

    monkeypatch.setenv("SHED_BIGBENCH_ARCHIVE", str(write_archive(tmp_path / "bigbench.tar.gz", {"quiz": quiz(10)})))
    model_dir = build_tiny_lm(tmp_path / "tiny_llama")
    scoring = {
        "utility": {
            "lm": {"model": str(model_dir), "steps": 1, "validation_rows": 3, "max_tokens": 48, "batch_size": 4}
        },
        "estimator": {"banzhaf_msr": {"samples": 3}},
    }
    plain = materialize(source_file, clusters={"n_clusters": 3}, proxy_shapley_scores=scoring)
    with_mc = materialize(
        source_file,
        clusters={"n_clusters": 3},
        proxy_shapley_scores={
            **scoring,
            "utility": {"lm": {**scoring["utility"]["lm"], "benchmarks": ["quiz"], "benchmark_items": 4}},
        },
    )
    assert plain.success and with_mc.success
    a, b = meta(plain, "proxy_shapley_scores"), meta(with_mc, "proxy_shapley_scores")
    assert a["utility_key"] != b["utility_key"] and b["utility_evaluations"] > 0  # other items, other cached values
    # U(all) gains the items' accuracy (between 0 and 1) on top of the same log-likelihood.
    assert 0 <= b["utility_all_proxies"] - a["utility_all_proxies"] <= 1
