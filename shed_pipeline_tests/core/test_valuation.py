"""core/valuation.py: a utility and an estimator chosen by name, run through the evaluation cache."""

import dataclasses

import numpy as np
import polars as pl
import pytest

from shed_pipeline.core.estimators import estimate
from shed_pipeline.core.strategies import StrategyError
from shed_pipeline.core.utilities import UTILITIES, EvaluationStore
from shed_pipeline.core.valuation import (
    SCORES_SCHEMA,
    evaluate_share,
    prepare_valuation,
    proxy_rows,
    validation_rows,
    value_proxies,
)
from shed_pipeline.core.valuation import estimate as estimate_valuation

WORDS = ["red", "green", "blue", "cyan", "gold", "grey", "pink", "teal"]


def pool(n_pool=8, n_val=5, seed=0):
    """Pool rows (each answering with its colour word) and validation rows; 3-d vectors."""
    rng = np.random.default_rng(seed)
    n = n_pool + n_val
    ids = [f"row{i:02d}" for i in range(n)]
    raw = pl.DataFrame(
        {
            "row_id": ids,
            "instruction": [f"name colour {i % 4}" for i in range(n)],
            "input": [""] * n,
            "output": [f"{WORDS[i % 4]} {WORDS[(i + 1) % 8]}" for i in range(n)],
            "split": ["pool"] * n_pool + ["validation"] * n_val,
        }
    )
    vecs = rng.normal(size=(n, 3))
    emb = pl.DataFrame(
        {"row_id": ids, "embedding": list((vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32))}
    )
    # Every pool row is its own cluster; cluster ids out of order, to check that ranks tie-break by them.
    clusters = pl.DataFrame(
        {
            "cluster_id": [10 + 3 * i for i in range(n_pool)][::-1],
            "proxy_row_id": ids[:n_pool],
            "size": [1] * n_pool,
            "fit_id": ["fit"] * n_pool,
        }
    )
    return raw, emb, clusters


def run(tmp_path, utility="knn", u_settings=None, estimator="knn_exact", e_settings=None, **kw):
    raw, emb, clusters = kw.pop("frames", None) or pool()
    return value_proxies(
        utility,
        u_settings,
        estimator,
        e_settings,
        clusters,
        raw,
        emb,
        validation_rows(raw, emb),
        tmp_path / "evals.duckdb",
        **kw,
    )


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
        match="estimator knn_exact needs utility knn, got 'probe'.*choose shed_grouped, tmc, banzhaf_msr, ts_chains or exact",
    ):
        run(tmp_path, utility="probe")
    with pytest.raises(StrategyError, match="unknown utility 'knm'"):
        run(tmp_path, utility="knm")
    with pytest.raises(StrategyError, match="estimator tmc has no setting 'samples'"):
        run(tmp_path, estimator="tmc", e_settings={"samples": 3})
    raw, emb, clusters = pool()
    with pytest.raises(ValueError, match="the validation split is empty"):
        value_proxies(
            "knn", None, "knn_exact", None, clusters, raw, emb, validation_rows(raw, emb).head(0), tmp_path / "e.duckdb"
        )
    assert not (tmp_path / "evals.duckdb").exists() and not (tmp_path / "e.duckdb").exists()
    with pytest.raises(ValueError, match="1 cluster proxies .*row07.* have no row or no vector"):
        proxy_rows(raw, emb.filter(pl.col("row_id") != "row07"), clusters["proxy_row_id"].to_list())


def test_frames_keep_the_columns_a_utility_reads(tmp_path):
    raw, emb, clusters = pool()
    proxies = proxy_rows(raw, emb, clusters["proxy_row_id"].to_list()[::-1])
    assert (
        proxies.columns == ["row_id", "instruction", "input", "output", "embedding"]
        and proxies["row_id"].to_list() == clusters["proxy_row_id"].to_list()[::-1]
    )
    chat = raw.with_columns(pl.lit(None, pl.Utf8).alias("messages"))
    assert validation_rows(chat, emb).columns == ["row_id", "instruction", "input", "output", "messages", "embedding"]
    assert validation_rows(chat, emb)["row_id"].to_list() == [f"row{i:02d}" for i in range(8, 13)]


class CountingKNN:
    """The knn utility, counting the coalitions it evaluates (each coalition's sorted positions)."""

    def __init__(self, inner):
        self.inner, self.n_players, self.asked = inner, inner.n_players, []

    def value(self, members):
        self.asked.append(tuple(np.flatnonzero(members)))
        return self.inner.value(members)


@pytest.mark.parametrize(
    ("estimator", "settings"),
    [
        ("banzhaf_msr", {"samples": 40}),
        ("ts_chains", {"chain_size": 3, "chain_rounds": 2, "permutations": 3}),
        ("tmc", {"permutations": 4}),
        ("shed_grouped", {"permutations": 3, "group_size": 2}),
    ],
)
def test_shares_evaluated_apart_give_the_serial_values_each_coalition_evaluated_once(tmp_path, estimator, settings):
    raw, emb, clusters = pool()
    serial = run(tmp_path / "serial", estimator=estimator, e_settings=settings, frames=(raw, emb, clusters), seed=3)
    store, shares = tmp_path / "shared" / "evals.duckdb", 3
    store.parent.mkdir()
    counted = []
    for share in range(shares):  # each share builds its own utility, as a worker process does
        prepared = prepare_valuation(
            "knn", None, estimator, settings, clusters, raw, emb, validation_rows(raw, emb), seed=3
        )
        assert prepared.fans_out
        prepared = dataclasses.replace(
            prepared, built=dataclasses.replace(prepared.built, utility=CountingKNN(prepared.built.utility))
        )
        counts = evaluate_share(prepared, store, share, shares, seed=3)
        assert counts["share"] == share and counts["utility_evaluations"] == len(prepared.built.utility.asked)
        assert (
            counts["coalitions"]
            == counts["utility_evaluations"] + counts["utility_cache_hits"] + counts["coalitions_of_other_shares"]
        )
        counted.append(prepared.built.utility.asked)
    evaluated = [c for asked in counted for c in asked]
    assert len(evaluated) == len(set(evaluated))  # no coalition evaluated by two shares
    # The serial run's coalitions (and U(all)), each evaluated by exactly one share.
    assert len(evaluated) == serial.counts["utility_evaluations"] == EvaluationStore(store).count(serial.built.key)
    assert all(len(asked) > 0 for asked in counted)  # the work is spread
    final = estimate_valuation(
        prepare_valuation("knn", None, estimator, settings, clusters, raw, emb, validation_rows(raw, emb), seed=3),
        clusters,
        store,
        seed=3,
    )
    assert (
        final.counts["utility_evaluations"] == 0
        and final.counts["utility_cache_hits_earlier_runs"] == final.counts["coalitions"]
    )
    assert final.scores.equals(serial.scores) and final.full == serial.full


def test_estimations_that_choose_coalitions_from_values_are_not_split(tmp_path):
    raw, emb, clusters = pool()
    for estimator, settings in [("tmc", {"permutations": 2, "truncation_tolerance": 0.1}), ("knn_exact", None)]:
        prepared = prepare_valuation("knn", None, estimator, settings, clusters, raw, emb, validation_rows(raw, emb))
        assert not prepared.fans_out
        with pytest.raises(ValueError, match=f"estimator {estimator} .* cannot be split into shares"):
            evaluate_share(prepared, tmp_path / "e.duckdb", 0, 2)
    prepared = prepare_valuation(
        "knn", None, "banzhaf_msr", {"samples": 4}, clusters, raw, emb, validation_rows(raw, emb)
    )
    with pytest.raises(ValueError, match="share 2 of 2 does not exist"):
        evaluate_share(prepared, tmp_path / "e.duckdb", 2, 2)
