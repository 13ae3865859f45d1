"""row_values materialized on local data: one value per pool row and kind, equal to the core
functions, recorded in lineage."""

import dagster as dg
import duckdb
import numpy as np
import polars as pl

from shed_pipeline.assets import embeddings, raw_dataset, row_values
from shed_pipeline.core.row_values.ifd import IFDSettings
from shed_pipeline.core.row_values.knn_shapley import knn_shapley_values
from shed_pipeline.resources import resources_for
from shed_pipeline.settings import Settings
from shed_pipeline_tests.tiny_lm import build_tiny_lm


def materialize(source, row_config):
    cfg = {"raw_dataset": {"source": str(source)}, "row_values": row_config}
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [raw_dataset, embeddings, row_values],
            resources=resources_for(Settings.from_env()),
            run_config={"ops": {k: {"config": v} for k, v in cfg.items()}},
            instance=instance,
            raise_on_error=False,
        )


def test_row_values_cover_exactly_the_pool_rows_and_equal_the_core_functions(shed_env, source_file, tmp_path):
    from shed_pipeline.core import lm
    from shed_pipeline.core.row_values.ifd import ifd_scores

    tiny = build_tiny_lm(tmp_path / "tiny")
    result = materialize(
        source_file,
        {"kinds": ["knn_shapley", "ifd"], "knn_shapley": {"k": 3}, "ifd": {"model": str(tiny), "max_tokens": 32}},
    )
    assert result.success
    frame = result.output_for_node("row_values")
    raw = result.output_for_node("raw_dataset")
    vecs = result.output_for_node("embeddings")
    rows = raw.join(vecs, on="row_id", maintain_order="left")
    pool, val = (
        rows.filter(pl.col("split") == "pool"),
        rows.filter(pl.col("split") == "validation").sort("row_id"),
    )  # the first 1,000 by id: all
    for kind in ("knn_shapley", "ifd"):
        assert frame.filter(pl.col("kind") == kind)["row_id"].to_list() == pool["row_id"].to_list()
    assert frame.height == 2 * pool.height
    expect = knn_shapley_values(
        pool["embedding"].to_numpy(),
        pool["output"].to_list(),
        val["embedding"].to_numpy(),
        val["output"].to_list(),
        k=3,
    )
    np.testing.assert_array_equal(frame.filter(pl.col("kind") == "knn_shapley")["value"].to_numpy(), expect)
    model, tok = lm.load_lm(tiny)
    some = pool.head(5)
    direct = ifd_scores(
        model,
        tok,
        lm.prompt_texts(tok, some["instruction"], some["input"], lm.messages_column(some)),
        some["output"].to_list(),
        max_tokens=IFDSettings(max_tokens=32).max_tokens,
    )[:, 0]
    np.testing.assert_allclose(frame.filter(pl.col("kind") == "ifd")["value"].head(5).to_numpy(), direct, rtol=1e-5)
    (mat,) = result.asset_materializations_for_node("row_values")
    assert mat.metadata["knn_shapley_rows"].value == pool.height and mat.metadata["kinds"].value == "knn_shapley, ifd"
    with duckdb.connect(str(shed_env["out"] / "lineage.duckdb"), read_only=True) as con:
        got = con.execute(
            "SELECT kind, count(*) FROM row_values WHERE run_id = ? GROUP BY kind ORDER BY kind", [result.run_id]
        ).fetchall()
    assert got == [("ifd", pool.height), ("knn_shapley", pool.height)]


def test_no_kinds_give_an_empty_frame_and_an_unknown_kind_a_clear_error(shed_env, source_file):
    empty = materialize(source_file, {"kinds": []})
    assert empty.success and empty.output_for_node("row_values").height == 0
    bad = materialize(source_file, {"kinds": ["shapely"]})
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    assert "unknown row value 'shapely'; choose one of knn_shapley, ifd" in failure.step_failure_data.error.to_string()


def row_values_job():
    """raw_dataset, embeddings and row_values on the multiprocess executor (Dagster's default), built
    again in each step process."""
    job = dg.define_asset_job("row_values_job")
    return dg.Definitions(
        assets=[raw_dataset, embeddings, row_values], resources=resources_for(Settings.from_env()), jobs=[job]
    ).resolve_job_def("row_values_job")


def test_ifd_in_row_id_shards_on_several_workers_equals_one_step(shed_env, source_file, tmp_path, monkeypatch):
    from shed_pipeline_tests.assets.test_shards import use_project

    tiny = build_tiny_lm(tmp_path / "tiny")
    kinds = {"kinds": ["knn_shapley", "ifd"], "ifd": {"model": str(tiny), "max_tokens": 32}}
    one = materialize(source_file, kinds)
    assert one.success
    expected = one.output_for_node("row_values")

    use_project(monkeypatch, shed_env["tmp"], "sharded")  # a fresh cache: the shards score every row
    cfg = {"raw_dataset": {"source": str(source_file)}, "row_values": {**kinds, "workers": 3}}
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(row_values_job),
            instance=instance,
            run_config={"ops": {k: {"config": v} for k, v in cfg.items()}},
        )
        assert result.success
        records = [r for r in instance.all_logs(result.run_id)]
    events = [r.dagster_event for r in records if r.dagster_event is not None]
    shards = {
        ev.step_key: {k: v.value for k, v in ev.event_specific_data.metadata.items()}
        for ev in events
        if ev.event_type_value == "STEP_OUTPUT" and ev.step_key.startswith("row_values.score_row_shard")
    }
    assert sorted(shards) == [f"row_values.score_row_shard[shard_{i}_of_3]" for i in range(3)]
    pool_rows = expected.filter(pl.col("kind") == "ifd").height
    assert sum(s["rows"] for s in shards.values()) == pool_rows and all(
        s["rows"] > 0 and s["kinds"] == "ifd" for s in shards.values()
    )
    # The last step scored nothing itself: every row was in the cache.
    assert not any("rows to score" in r.user_message for r in records if r.step_key == "row_values.value_rows")
    assert any(
        "rows to score" in r.user_message
        for r in records
        if (r.step_key or "").startswith("row_values.score_row_shard")
    )
    got = pl.read_parquet(shed_env["tmp"] / "sharded" / "home" / "assets" / "row_values.parquet")
    assert got.select("row_id", "kind").equals(expected.select("row_id", "kind"))
    np.testing.assert_allclose(got["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-5)


def test_a_worker_count_out_of_range_is_one_clear_error(shed_env, source_file):
    bad = materialize(source_file, {"kinds": ["knn_shapley"], "workers": 0})
    assert not bad.success
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    assert (
        failure.step_key == "row_values.plan_row_shards"
        and "row_values.workers must be a whole number from 1 to 1024, got 0"
        in failure.step_failure_data.error.to_string()
    )
