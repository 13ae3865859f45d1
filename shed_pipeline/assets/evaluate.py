"""evaluation_metrics: the curated subset against baseline selections and random subsets of the same
size and the full pool, on the held-out test split: model-free metrics always, and (default) the
target LM fine-tuned on each, compared with the random arms on the same test rows and items."""

import dataclasses
import json
import time
from typing import Optional

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.assets.cluster import pool_vectors
from shed_pipeline.assets.embed import with_embeddings
from shed_pipeline.assets.outputs import png_md, publish_outputs
from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.versions import CODE_VERSION, frame_version, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.evaluation import (
    DEFAULT_TASKS,
    arms_frame,
    baseline_selections,
    comparison,
    comparison_display,
    evaluation_report,
    metrics_frame,
    selected_pool_indices,
)
from shed_pipeline.core.files import write_text_atomic
from shed_pipeline.core.selection.tables import selection_inputs
from shed_pipeline.gpu_steps import gpu_step
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource
from shed_pipeline.summaries import ArmProgress, EvaluationMetricsSummary


class EvaluationConfig(dg.Config):
    k: int = 5  # neighbours of the held-out kNN utility
    # Test rows of the held-out kNN utility (the first by row id); 0 = the whole test split. Its cost grows with
    # rows x pool.
    heldout_rows: int = 2000
    random_seeds: int = 2  # random same-size subsets to compare against (seeds seed .. seed+n-1); z needs 2
    include_full_pool: bool = False  # the full pool trains on all its rows: ~10x a 10% arm (on a CPU, minutes)
    # Selection methods evaluated as arms at the curated subset's size (skipped, with the reason
    # logged, when their requirements are not met: e.g. ifd without the ifd row values). Default:
    # the strongest cheap baseline measured (README "Results"): stratified, equal to random on both
    # sources, where longest and ifd are far below it.
    baselines: list[str] = ["stratified"]
    seed: int = 0
    # The language-model arms: LoRA fine-tune of the target LM on each arm's rows.
    lm: bool = True  # false: the model-free report only
    lm_model: str = "smollm2-135m-instruct"  # the packaged SmolLM2-135M-Instruct, or a local model folder
    epochs: float = 1.0  # passes over each arm's own rows: steps = ceil(epochs x rows / batch)
    steps: Optional[int] = None  # instead: the same fixed number of steps for every arm
    lm_lr: float = 1e-3
    lm_rank: int = 8
    lm_batch_size: int = 8
    lm_max_tokens: int = 128
    test_rows: int = 48  # test rows scored per arm (the first by row id); 0 = the whole test split
    benchmarks: list[str] = list(DEFAULT_TASKS)  # bigbench multiple-choice tasks
    benchmark_items: int = 30  # items per benchmark (a fixed sample); 0 = all
    bootstrap: int = 2000  # resamples of the paired bootstrap intervals


def arm_observer(context: dg.AssetExecutionContext):
    """An `on_arm_done` that records each finished arm as an observation of evaluation_metrics (arms
    done and in all, the arm, whether it came from the cache): after an interrupt, the run's event
    log tells how many arms are done, and kept in the arms cache."""

    def on_arm_done(done: int, total: int, label: str, cached: bool) -> None:
        context.log_event(
            dg.AssetObservation(
                asset_key="evaluation_metrics",
                metadata=ArmProgress(arms_done=done, arms_total=total, arm=label, cached=cached).metadata(),
            )
        )

    return on_arm_done


@dg.asset(
    group_name="evaluation",
    code_version=CODE_VERSION,
    kinds={"python", "pytorch"},
    **gpu_step(),
    automation_condition=upstream_data_changed(),
    ins={
        "raw_dataset": dg.AssetIn(
            metadata={"columns": ["row_id", "split", "task", "instruction", "input", "output", "messages"]}
        )
    },
)
def evaluation_metrics(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    row_values: pl.DataFrame,
    curated_subset: pl.DataFrame,
    compute: ComputeResource,
    paths: PathsResource,
    lineage: LineageResource,
    s3: S3Resource,
) -> dg.Output[pl.DataFrame]:
    """Subset size, cluster and task coverage, diversity and held-out kNN utility of the curated
    subset, each baseline, random subsets of the same size and the full pool; with `lm` (default),
    the target LM LoRA-tuned on each (same epochs over its own rows) and scored on the same test
    rows and bigbench multiple-choice items: differences to random, 95% paired intervals, z."""
    t0 = time.perf_counter()
    # Prompts only for the LM arms (they fine-tune on them); the model-free report reads responses.
    wanted = (
        ("row_id", "split", "task", "instruction", "input", "output", "messages")
        if config.lm
        else ("row_id", "split", "task", "output")
    )
    columns = [c for c in wanted if c in raw_dataset.collect_schema().names()]
    rows = raw_dataset.filter(pl.col("split").is_in(["pool", "test"])).select(columns).collect()
    pool, x = pool_vectors(rows, embeddings)
    cluster_of = dict(clusters.select(pl.col("members").alias("row_id"), "cluster_id").explode("row_id").iter_rows())
    pool_ids = pool["row_id"].to_list()
    curated_idx = selected_pool_indices(pool_ids, curated_subset["row_id"].to_list())
    method = curated_subset["method"][0] if curated_subset.height else None
    inputs = selection_inputs(
        pool.select("row_id", "output"), clusters, row_values, seed=config.seed, log=context.log.info, vectors=x
    )  # the vectors at hand: no second join
    picked = baseline_selections(inputs, config.baselines, len(curated_idx), method, context.log.info)
    baselines = {name: selected_pool_indices(pool_ids, ids) for name, ids in picked.items()}
    test = with_embeddings(rows.filter(pl.col("split") == "test"), embeddings, how="inner")
    del rows
    report = evaluation_report(
        config,
        pool,
        x,
        pool_clusters=[cluster_of[r] for r in pool_ids],
        test=test,
        curated_idx=curated_idx,
        baselines=baselines,
        device=compute.torch_device(),
        cache_dir=paths.cache(),
        arms_cache=paths.evaluation_cache(),
        log=context.log.info,
        on_arm_done=arm_observer(context),
        bigbench_archive=paths.archive(),
    )
    report["method"] = method
    df = metrics_frame(report)
    report_path = paths.out() / "evaluation.json"
    write_text_atomic(report_path, json.dumps(report, indent=2, sort_keys=True, default=str))
    links = publish_outputs(paths, s3, [report_path], context.log.warning)
    store = lineage.store()
    store.write_table("evaluations", context.run.run_id, df)
    lm_report = report.get("lm")
    if lm_report:
        store.write_table("evaluation_arms", context.run.run_id, arms_frame(lm_report["records"]))
        store.write_table(
            "evaluation_comparisons",
            context.run.run_id,
            pl.DataFrame(comparison.lineage_rows(lm_report["comparisons"]), schema=comparison.LINEAGE_SCHEMA),
        )
    scalars = dict(zip(df["metric"].to_list(), df["value"].to_list(), strict=True))
    # The report's scalar metrics (per baseline and arm: extras), and where the report is.
    summary = dataclasses.replace(
        EvaluationMetricsSummary.from_metadata(scalars), evaluation_json=links[report_path.name].value
    )
    meta = record_step(context, store, config, summary, started=t0)
    meta.update(
        baselines=dg.MetadataValue.json(sorted(baselines)),
        utility_random=dg.MetadataValue.json(report.get("utility_random", [])),
        evaluation_json=links[report_path.name],  # in the UI, a link rather than text
    )
    if lm_report:
        meta["lm_training"] = dg.MetadataValue.json(lm_report["training"])
        meta["lm_comparison"] = dg.MetadataValue.md(comparison_display.markdown(lm_report["comparisons"]))
    if "utility_subset" in report:
        arms = {
            "curated": report["utility_subset"],
            **{n: m["utility"] for n, m in report["baselines"].items()},
            "random (mean)": report["utility_random_mean"],
            "full pool": report.get("utility_full_pool"),
        }
        arms = {k: v for k, v in arms.items() if v is not None}
        errs = [report["utility_random_std"] if k == "random (mean)" else 0.0 for k in arms]
        meta["heldout_utility"] = png_md(
            plots.bars(list(arms), list(arms.values()), "held-out kNN utility (test split)", "utility", errs),
            "held-out utility",
        )
    if lm_report and lm_report["comparisons"]:
        title = f"target LM, {lm_report['training']['description']}: difference to random, 95% interval"
        meta["lm_arms"] = png_md(
            comparison_display.interval_plot(lm_report["comparisons"], title), "LM evaluation arms against random"
        )
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
