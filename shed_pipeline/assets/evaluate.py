"""evaluation_metrics: model-free quality of the curated subset against same-size random subsets
and the full pool, on the held-out test split."""

import json
import time

import dagster as dg
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, frame_version, input_runs, png_md, upstream_data_changed
from shed_pipeline.assets.cluster import pool_vectors
from shed_pipeline.core import plots
from shed_pipeline.core.evaluation import selected_pool_indices, subset_report
from shed_pipeline.resources import LineageResource, PathsResource


class EvaluationConfig(dg.Config):
    k: int = 5  # neighbours of the held-out kNN utility
    random_seeds: int = 5  # random same-size subsets to compare against
    include_full_pool: bool = True
    seed: int = 0


@dg.asset(group_name="evaluation", code_version=CODE_VERSION, kinds={"python"}, pool="duckdb", automation_condition=upstream_data_changed())
def evaluation_metrics(context: dg.AssetExecutionContext, config: EvaluationConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, clusters: pl.DataFrame, curated_subset: pl.DataFrame, paths: PathsResource, lineage: LineageResource) -> dg.Output[pl.DataFrame]:
    """Subset size, cluster and task coverage, diversity, and held-out kNN utility of the subset vs
    random subsets of the same size (several seeds) and the full pool."""
    t0 = time.perf_counter()
    pool, x = pool_vectors(raw_dataset, embeddings)
    cluster_of = dict(clusters.select(pl.col("members").alias("row_id"), "cluster_id").explode("row_id").iter_rows())
    pool_ids = pool["row_id"].to_list()
    test = raw_dataset.filter(pl.col("split") == "test").join(embeddings, on="row_id", how="inner", maintain_order="left")
    report = subset_report(
        selected_pool_indices(pool_ids, curated_subset["row_id"].to_list()),
        x,
        pool["output"].to_list(),
        [cluster_of[r] for r in pool_ids],
        pool["task"].to_list(),
        test["embedding"].to_numpy() if test.height else x[:0],
        test["output"].to_list(),
        k=config.k,
        random_seeds=[config.seed + i for i in range(config.random_seeds)],
        include_full_pool=config.include_full_pool,
    )
    report["method"] = curated_subset["method"][0] if curated_subset.height else None
    report["test_rows"] = test.height
    scalars = {k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    df = pl.DataFrame({"metric": list(scalars), "value": [float(v) for v in scalars.values()]})
    (paths.out() / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    store = lineage.store()
    store.write_table("evaluations", context.run.run_id, df.with_columns(pl.lit(None, dtype=pl.Utf8).alias("detail")))
    meta: dict = {**scalars, "utility_random": dg.MetadataValue.json(report.get("utility_random", [])), "seconds": round(time.perf_counter() - t0, 3)}
    store.record_asset(context.run.run_id, "evaluation_metrics", CODE_VERSION, config.model_dump(), {k: v for k, v in meta.items() if not isinstance(v, dg.MetadataValue)}, inputs=input_runs(context, ["raw_dataset", "embeddings", "clusters", "curated_subset"]))
    if "utility_subset" in report:
        labels = ["curated", "random (mean)"] + (["full pool"] if "utility_full_pool" in report else [])
        vals = [report["utility_subset"], report["utility_random_mean"]] + ([report["utility_full_pool"]] if "utility_full_pool" in report else [])
        errs = [0.0, report["utility_random_std"]] + ([0.0] if "utility_full_pool" in report else [])
        meta["heldout_utility"] = png_md(plots.bars(labels, vals, "held-out kNN utility (test split)", "utility", errs), "held-out utility")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
