"""core/valuation/estimation.py: a utility and an estimator chosen by name, run through the evaluation
cache."""

import numpy as np
import polars as pl
import pytest

from shed_pipeline.core.estimators import estimate
from shed_pipeline.core.strategies import StrategyError
from shed_pipeline.core.utilities import UTILITIES, EvaluationStore
from shed_pipeline.core.valuation import SCORES_SCHEMA, proxy_rows, validation_rows, value_proxies
from shed_pipeline_tests.core.valuation.helpers import pool, run


def test_knn_exact_values_equal_exact_enumeration_and_ranks_follow_them(tmp_path):
    closed = run(tmp_path / "a")
    enumerated = run(tmp_path / "b", estimator="exact")
    np.testing.assert_allclose(closed.values, enumerated.values, atol=1e-12)
    s = closed.scores
    assert (
        s.schema == pl.Schema(SCORES_SCHEMA)
        and s["estimator"].unique().to_list() == ["knn_exact"]
        and s["utility"].unique().to_list() == ["knn"]
    )
    # rank 1 = highest value; equal values: the lower cluster id first
    order = sorted(range(s.height), key=lambda i: (-s["score"][i], s["cluster_id"][i]))
    assert [s["rank"][i] for i in order] == list(range(1, s.height + 1))
    assert closed.counts["utility_evaluations"] == 1  # the closed form evaluates only U(all)
    assert closed.full == pytest.approx(closed.built.utility.value(np.ones(8, dtype=bool)))
    meta = closed.metadata()
    assert (
        meta["players"] == 8
        and meta["estimator"] == "knn_exact"
        and meta["utility_key"] == closed.built.key
        and meta["validation_rows"] == 5
    )
    assert meta["sum_of_values"] == pytest.approx(closed.full - 0.0)  # efficiency: U(empty) = 0 for knn


def test_sampling_estimator_with_settings_reuses_the_cache_and_counts_new_players(tmp_path):
    raw, emb, clusters = pool()
    first = run(tmp_path, estimator="tmc", e_settings={"permutations": 3}, frames=(raw, emb, clusters), seed=4)
    direct = estimate(
        "tmc", run(tmp_path / "x").built.utility, seed=4, player_keys=clusters["cluster_id"].to_numpy(), permutations=3
    )
    np.testing.assert_array_equal(first.values, direct.values)
    assert first.counts["players_new"] == 8 and first.counts["utility_evaluations"] > 0
    again = run(
        tmp_path,
        estimator="tmc",
        e_settings={"permutations": 3},
        frames=(raw, emb, clusters),
        seed=4,
        previous_proxies=set(clusters["proxy_row_id"]),
    )
    assert (
        again.counts["utility_evaluations"] == 0
        and again.counts["utility_cache_hits_earlier_runs"] == again.counts["coalitions"]
    )
    assert again.counts["players_new"] == 0 and again.counts["coalitions_with_new_players"] == 0
    assert again.scores.equals(first.scores)
    assert EvaluationStore(tmp_path / "evals.duckdb").count(first.built.key) == first.counts["utility_evaluations"]


def test_settings_as_objects_or_mappings_give_the_same_valuation(tmp_path):
    a = run(tmp_path, u_settings={"k": 2}, estimator="banzhaf_msr", e_settings={"samples": 30})
    b = run(tmp_path, u_settings=UTILITIES["knn"].settings(k=2), estimator="banzhaf_msr", e_settings={"samples": 30})
    assert a.scores.equals(b.scores) and a.built.key == b.built.key
    assert a.built.key != run(tmp_path).built.key  # k is part of the cache key
    with pytest.raises(TypeError, match="utility knn takes KNNSettings, got ProbeUtilitySettings"):
        run(tmp_path, u_settings=UTILITIES["probe"].settings())


def test_removal_rule_marks_the_lowest_valued_proxies(tmp_path):
    v = run(tmp_path, removal_points=4, removal_max_fraction=0.5)
    dropped = v.scores.filter(pl.col("dropped_by_removal_rule"))
    assert dropped.height == v.curve.best and v.metadata()["removal_best"] == v.curve.best
    if dropped.height:
        assert dropped["score"].max() <= v.scores.filter(~pl.col("dropped_by_removal_rule"))["score"].min()
    frame = v.removal_frame()
    assert frame["removed"].to_list() == v.curve.removed and frame["chosen"].sum() == 1
    assert run(tmp_path).scores["dropped_by_removal_rule"].null_count() == 8 and run(tmp_path).removal_frame() is None


def test_bad_choices_and_inputs_fail_before_any_work(tmp_path):
    with pytest.raises(
        StrategyError,
        match="estimator knn_exact needs utility knn, got 'probe'.*"
        "choose shed_grouped, tmc, banzhaf_msr, ts_chains or exact",
    ):
        run(tmp_path, utility="probe")
    with pytest.raises(StrategyError, match="unknown utility 'knm'"):
        run(tmp_path, utility="knm")
    with pytest.raises(StrategyError, match="estimator tmc has no setting 'samples'"):
        run(tmp_path, estimator="tmc", e_settings={"samples": 3})
    raw, emb, clusters = pool()
    with pytest.raises(ValueError, match="the validation split is empty"):
        value_proxies(
            "knn",
            None,
            "knn_exact",
            None,
            clusters=clusters,
            raw_dataset=raw,
            embeddings=emb,
            validation=validation_rows(raw, emb).head(0),
            evaluation_store=tmp_path / "e.duckdb",
        )
    assert not (tmp_path / "evals.duckdb").exists() and not (tmp_path / "e.duckdb").exists()
    with pytest.raises(ValueError, match="1 cluster proxies .*row07.* have no row or no vector"):
        proxy_rows(raw, emb.filter(pl.col("row_id") != "row07"), clusters["proxy_row_id"].to_list())
