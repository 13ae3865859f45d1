"""Sharded embeddings (SHED_EMBEDDING_SHARDS): the union of the shards is the unsharded result, run as
one run on the multiprocess executor or as one run per shard (a backfill) followed by the rest; a
refresh embeds only in the shards that gained rows; a missing shard fails with one clear line."""

import json
import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest

from shed_pipeline.assets import ALL_ASSETS, assets_for
from shed_pipeline.core.shards import shard_keys, shard_of
from shed_pipeline.core.sources import row_id_for
from shed_pipeline.resources import resources_for
from shed_pipeline.settings import Settings
from shed_pipeline_tests.assets.test_pipeline import run_config
from shed_pipeline_tests.synthetic import make_rows, write_jsonl

SHARDS = 3
DOWNSTREAM = ["clusters", "proxy_shapley_scores", "row_values", "curated_subset", "evaluation_metrics"]


def curation_job():
    from shed_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def("shed_curation_job")


def use_project(monkeypatch, root, name: str, vectors_from: dict | None = None) -> dict:
    """A fresh project folder (asset values, state, results, lineage), with a copy of another
    project's embedding cache: the same vectors. (Encoding is not batch-invariant: shards encoded
    apart differ from one encode of all rows in the last bits, ~1e-3 in bf16, as a refresh does.)"""
    home, out = root / name / "home", root / name / "out"
    if vectors_from is not None:
        (home / "cache").mkdir(parents=True)
        shutil.copy(vectors_from["home"] / "cache" / "embeddings.duckdb", home / "cache" / "embeddings.duckdb")
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(home))
    monkeypatch.setenv("SHED_PIPELINE_OUT", str(out))
    monkeypatch.setenv("SHED_PIPELINE_LINEAGE", str(out / "lineage.duckdb"))
    return {"home": home, "out": out}


def results(project: dict) -> dict:
    assets = project["home"] / "assets"
    return {
        "curated.jsonl": (project["out"] / "curated.jsonl").read_bytes(),
        "clusters": pl.read_parquet(assets / "clusters.parquet"),
        "row_values": pl.read_parquet(assets / "row_values.parquet"),
        "evaluation_metrics": pl.read_parquet(assets / "evaluation_metrics.parquet"),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a["curated.jsonl"] == b["curated.jsonl"]
    for name in ("clusters", "row_values", "evaluation_metrics"):
        assert a[name].equals(b[name]), name


def only(cfg: dict, selection: list[str]) -> dict:
    """The run config's blocks of the selected assets (Dagster refuses config of unselected ones)."""
    return {"ops": {k: v for k, v in cfg["ops"].items() if k in selection}}


def step_meta(result, node: str) -> list[dict]:
    return [
        {k: getattr(v, "value", v) for k, v in m.metadata.items()} for m in result.asset_materializations_for_node(node)
    ]


def test_the_union_of_shards_equals_the_unsharded_run_as_one_run_and_as_a_backfill(shed_env, source_file, monkeypatch):
    root, cfg = shed_env["tmp"], run_config(source_file)

    whole = use_project(monkeypatch, root, "unsharded")
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            ALL_ASSETS, resources=resources_for(Settings.from_env()), run_config=cfg, instance=instance
        ).success
    expected = results(whole)
    vectors = pl.read_parquet(whole["home"] / "assets" / "embeddings.parquet").sort("row_id")

    # One run over every shard, steps as subprocesses (the multiprocess executor).
    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", str(SHARDS))
    one_run = use_project(monkeypatch, root, "one_run", vectors_from=whole)
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(curation_job), instance=instance, run_config=cfg)
        assert result.success
        mats = instance.fetch_materializations(dg.AssetKey("embeddings"), limit=10).records
        assert sorted(r.partition_key for r in mats) == shard_keys(SHARDS) and {r.run_id for r in mats} == {
            result.run_id
        }
    files = sorted((one_run["home"] / "assets" / "embeddings").glob("*.parquet"))
    assert [f.stem for f in files] == shard_keys(SHARDS) and not (
        one_run["home"] / "assets" / "embeddings.parquet"
    ).exists()
    shards = [pl.read_parquet(f) for f in files]
    assert all(
        shard_of(s["row_id"], SHARDS).unique().to_list() == [i] for i, s in enumerate(shards)
    )  # each row in its own shard
    assert pl.concat(shards).sort("row_id").equals(vectors)  # the union is the unsharded value
    assert_same(results(one_run), expected)

    # A backfill: one run per shard (as the UI launches them), then the rest of the graph.
    backfill = use_project(monkeypatch, root, "backfill", vectors_from=whole)
    assets = assets_for(SHARDS)
    with dg.instance_for_test() as instance:

        def run(selection, **kw):
            return dg.materialize(
                assets,
                selection=selection,
                resources=resources_for(Settings.from_env()),
                run_config=only(cfg, selection),
                instance=instance,
                **kw,
            )

        assert run(["raw_dataset"]).success
        shard_runs = {}
        for key in shard_keys(SHARDS):
            r = run(["embeddings"], partition_key=key)
            assert r.success
            (m,) = step_meta(r, "embeddings")
            assert (
                m["shards"] == key
                and m["rows"]
                == m["rows_reused"]
                == pl.read_parquet(backfill["home"] / "assets" / "embeddings" / f"{key}.parquet").height
            )
            shard_runs[key] = r.run_id
        rest = run(DOWNSTREAM)
        assert rest.success
    assert_same(results(backfill), expected)
    with duckdb.connect(str(backfill["out"] / "lineage.duckdb"), read_only=True) as con:
        (inputs,) = con.execute(
            "SELECT inputs FROM asset_runs WHERE run_id = ? AND asset = 'clusters'", [rest.run_id]
        ).fetchone()
    inputs = json.loads(inputs)
    assert {
        k: inputs[f"embeddings/{k}"] for k in shard_keys(SHARDS)
    } == shard_runs  # which run wrote each shard it read
    assert inputs["embeddings"] == shard_runs[shard_keys(SHARDS)[-1]]


def test_a_refresh_embeds_only_in_the_shards_that_gained_rows_and_a_missing_shard_is_named(
    shed_env, tmp_path, monkeypatch
):
    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", str(SHARDS))
    rows = make_rows(160)
    source = write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    cfg = run_config(source)
    assets, keys = assets_for(SHARDS), shard_keys(SHARDS)
    with dg.instance_for_test() as instance:

        def run(selection, **kw):
            return dg.materialize(
                assets,
                selection=selection,
                resources=resources_for(Settings.from_env()),
                run_config=only(cfg, selection),
                instance=instance,
                raise_on_error=False,
                **kw,
            )

        assert run(["raw_dataset"]).success
        for key in keys[:-1]:
            assert run(["embeddings"], partition_key=key).success
        # The last shard was never computed: the downstream run says which, in one line.
        failed = run(["clusters"])
        assert not failed.success
        (failure,) = [e for e in failed.all_events if e.is_step_failure]
        assert (
            f"partition {keys[-1]} of upstream asset embeddings has not been materialized here (materialize all of "
            "its partitions)" in failure.step_failure_data.error.cause.message
        )
        assert run(["embeddings"], partition_key=keys[-1]).success

        # New rows that hash to one shard only; the others gain nothing.
        target = 1
        extra = [
            r
            for r in make_rows(400, seed=7)[160:]
            if int(row_id_for(r["instruction"], r["input"], r["output"])[:8], 16) % SHARDS == target
        ][:12]
        write_jsonl(source, rows + extra)
        before = {
            k: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("embeddings"), asset_partitions=[k]), limit=1
            ).records[0]
            for k in keys
        }
        assert run(["raw_dataset"]).success
        ids = pl.read_parquet(shed_env["home"] / "assets" / "raw_dataset.parquet", columns=["row_id"])["row_id"]
        old = set()
        for k in keys:
            old |= set(pl.read_parquet(shed_env["home"] / "assets" / "embeddings" / f"{k}.parquet")["row_id"].to_list())
        new_ids = [r for r in ids.to_list() if r not in old]
        gained = {k: sum(1 for s in shard_of(new_ids, SHARDS).to_list() if s == i) for i, k in enumerate(keys)}
        assert gained[keys[target]] == len(extra) == len(new_ids) > 0 and sum(gained.values()) == len(new_ids)
        for k in keys:
            r = run(["embeddings"], partition_key=k)
            (m,) = step_meta(r, "embeddings")
            assert m["rows_embedded"] == gained[k]
            assert m["model_loaded"] == (gained[k] > 0)  # a shard without new rows loads no model
            after = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("embeddings"), asset_partitions=[k]), limit=1
            ).records[0]
            same_version = (
                after.asset_materialization.tags["dagster/data_version"]
                == before[k].asset_materialization.tags["dagster/data_version"]
            )
            assert same_version == (gained[k] == 0)  # an untouched shard keeps its data version
        assert run(DOWNSTREAM).success


@pytest.mark.parametrize("bad", ["0", "many"])
def test_a_bad_shard_count_fails_in_one_line(bad, monkeypatch):
    from shed_pipeline.definitions import build_definitions

    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", bad)
    with pytest.raises(
        ValueError, match=rf"^SHED_EMBEDDING_SHARDS='{bad}': give a whole number of embedding shards from 1 to 1024"
    ):
        build_definitions()


def test_the_cli_runs_every_shard_in_one_run(shed_env, source_file, capsys):
    from shed_pipeline.cli import main

    assert (
        main(
            [
                "run",
                "--source",
                str(source_file),
                "--clusters",
                "8",
                "--no-lm-eval",
                "--embedding-shards",
                "2",
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["work"]["embeddings"]["rows_embedded"] == 240  # the two shards' rows, counted once
    assert sorted(p.stem for p in (shed_env["home"] / "assets" / "embeddings").glob("*.parquet")) == ["0", "1"]
    assert (
        len((shed_env["out"] / "curated.jsonl").read_text().splitlines())
        == summary["assets"]["curated_subset"]["selected"]
    )
