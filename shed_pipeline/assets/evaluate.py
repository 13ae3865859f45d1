"""evaluation_metrics: the curated subset against same-size random subsets and the full pool, on
the held-out test split: model-free metrics always, and (default) the target LM fine-tuned on each."""

import hashlib
import json
import time

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.assets._common import CODE_VERSION, first_by_id, frame_version, gpu_step, input_runs, png_md, publish_outputs, upstream_data_changed
from shed_pipeline.assets.cluster import pool_vectors
from shed_pipeline.core import plots
from shed_pipeline.core.benchmarks import DEFAULT_TASKS
from shed_pipeline.core.evaluation import selected_pool_indices, subset_report
from shed_pipeline.core.files import write_text_atomic
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource


class EvaluationConfig(dg.Config):
    k: int = 5  # neighbours of the held-out kNN utility
    random_seeds: int = 3  # random same-size subsets to compare against (seeds seed .. seed+n-1)
    include_full_pool: bool = True
    seed: int = 0
    # The language-model arms: LoRA fine-tune of the target LM on each subset, same budget for all.
    lm: bool = True  # false: the model-free report only
    lm_model: str = "smollm2-135m-instruct"  # the packaged SmolLM2-135M-Instruct, or a local model folder
    lm_steps: int = 12
    lm_epochs: float | None = None  # instead of lm_steps: passes over the curated subset (GPU protocol: 3)
    lm_lr: float = 1e-3
    lm_rank: int = 8
    lm_batch_size: int = 8
    lm_max_tokens: int = 128
    lm_test_rows: int = 48  # test rows scored per arm (a fixed sample); 0 = the whole test split
    benchmarks: list[str] = list(DEFAULT_TASKS)  # bigbench multiple-choice tasks
    benchmark_items: int = 30  # items per benchmark (a fixed sample); 0 = all


def lm_arms_report(config: EvaluationConfig, pool: pl.DataFrame, test: pl.DataFrame, curated_idx, device: str, cache_dir, log, arms_cache=None, on_arm_done=None) -> dict:
    """Fine-tune and score every arm; the records, their summary and the SHED verdict. Chat rows are
    prompted with their turns (`messages`); `on_arm_done(done, total, label, cached)` after each arm."""
    from shed_pipeline.core import lm
    from shed_pipeline.core.benchmarks import load_choice_items
    from shed_pipeline.core.evaluation_lm import FinetuneBudget, evaluate_arms, plan_arms, steps_for_epochs, summarize, verdict

    path = lm.resolve_lm(config.lm_model, cache_dir, log)
    model, tok = lm.load_lm(path, device=device)
    steps = steps_for_epochs(config.lm_epochs, len(curated_idx), config.lm_batch_size) if config.lm_epochs else config.lm_steps
    budget = FinetuneBudget(steps=steps, lr=config.lm_lr, rank=config.lm_rank, alpha=2 * config.lm_rank, batch_size=config.lm_batch_size, max_tokens=config.lm_max_tokens, seed=config.seed)
    test = first_by_id(test, config.lm_test_rows)
    raw_items = load_choice_items(config.benchmarks, config.benchmark_items, config.seed, cache_dir, log) if config.benchmarks else {}
    benchmarks = {name: lm.choice_items(tok, items) for name, items in raw_items.items()}
    arms = plan_arms(pool.height, curated_idx, [config.seed + i for i in range(config.random_seeds)], config.include_full_pool)
    fingerprint = lm.model_fingerprint(path)
    signature = lm.device_signature(device)  # results depend on the device's arithmetic and the library versions
    cache = arms_cache / hashlib.sha256(signature.encode()).hexdigest()[:16] if arms_cache is not None else None
    pool_prompts = lm.prompt_texts(tok, pool["instruction"], pool["input"], lm.messages_column(pool), log)
    test_prompts = lm.prompt_texts(tok, test["instruction"], test["input"], lm.messages_column(test), log)
    records = evaluate_arms(model, tok, arms, pool_prompts, pool["output"].to_list(), test_prompts, test["output"].to_list(), benchmarks, budget, log, cache, fingerprint, on_arm_done)
    summary = summarize(records)
    return {
        "model_path": str(path),
        "model_fingerprint": fingerprint,
        "device": device,
        "device_signature": signature,
        "budget": budget.as_dict(),
        "test_rows": test.height,
        "benchmark_items": {k: len(v) for k, v in benchmarks.items()},
        "records": records,
        "summary": summary,
        "verdict": verdict(summary),
    }


def arm_observer(context: dg.AssetExecutionContext):
    """An `on_arm_done` that records each finished arm as an observation of evaluation_metrics (arms
    done and in all, the arm, whether it came from the cache): after an interrupt, the run's event
    log tells how many arms are done, and kept in the arms cache."""

    def on_arm_done(done: int, total: int, label: str, cached: bool) -> None:
        context.log_event(dg.AssetObservation(asset_key="evaluation_metrics", metadata={"arms_done": done, "arms_total": total, "arm": label, "cached": cached}))

    return on_arm_done


def _arm_table(summary: list[dict]) -> str:
    lines = ["| benchmark | metric | arm | mean | std | n |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['benchmark']} | {s['metric']} | {s['arm']} | {s['mean']:.4f} | {s['std']:.4f} | {s['n']} |" for s in summary]
    return "\n".join(lines)


@dg.asset(group_name="evaluation", code_version=CODE_VERSION, kinds={"python", "pytorch"}, **gpu_step(), automation_condition=upstream_data_changed())
def evaluation_metrics(context: dg.AssetExecutionContext, config: EvaluationConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, clusters: pl.DataFrame, curated_subset: pl.DataFrame, compute: ComputeResource, paths: PathsResource, lineage: LineageResource, s3: S3Resource) -> dg.Output[pl.DataFrame]:
    """Subset size, cluster and task coverage, diversity, and held-out kNN utility of the subset vs
    random subsets of the same size and the full pool; with `lm` (default), the target LM LoRA-tuned
    on each (same budget) and scored on the test split and bigbench multiple-choice tasks."""
    t0 = time.perf_counter()
    pool, x = pool_vectors(raw_dataset, embeddings)
    cluster_of = dict(clusters.select(pl.col("members").alias("row_id"), "cluster_id").explode("row_id").iter_rows())
    pool_ids = pool["row_id"].to_list()
    curated_idx = selected_pool_indices(pool_ids, curated_subset["row_id"].to_list())
    test = raw_dataset.filter(pl.col("split") == "test").join(embeddings, on="row_id", how="inner", maintain_order="left")
    report = subset_report(
        curated_idx,
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
    lm_report = lm_arms_report(config, pool, test, curated_idx, compute.torch_device(), paths.cache(), context.log.info, paths.evaluation_cache(), arm_observer(context)) if config.lm else None
    scalars = {k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    detail = [None] * len(scalars)
    if lm_report:
        report["lm"] = lm_report
        for s in lm_report["summary"]:  # e.g. lm_social_iqa_curated_mean
            for stat in ("mean", "std"):
                scalars[f"lm_{s['benchmark']}_{s['arm']}_{stat}"] = s[stat]
                detail.append(json.dumps({"benchmark": s["benchmark"], "metric": s["metric"], "arm": s["arm"], "stat": stat, "n": s["n"]}))
    df = pl.DataFrame({"metric": list(scalars), "value": [float(v) for v in scalars.values()], "detail": detail}, schema={"metric": pl.Utf8, "value": pl.Float64, "detail": pl.Utf8})
    report_path = paths.out() / "evaluation.json"
    write_text_atomic(report_path, json.dumps(report, indent=2, sort_keys=True, default=str))
    links = publish_outputs(paths, s3, [report_path], context.log.warning)
    store = lineage.store()
    store.write_table("evaluations", context.run.run_id, df)
    if lm_report:
        store.write_table("evaluation_arms", context.run.run_id, pl.DataFrame(lm_report["records"]).with_columns(pl.lit(lm_report["budget"]["steps"]).alias("steps")))
    meta: dict = {**scalars, "utility_random": dg.MetadataValue.json(report.get("utility_random", [])), "evaluation_json": links[report_path.name], "seconds": round(time.perf_counter() - t0, 3)}
    if lm_report:
        meta["lm_verdict"] = dg.MetadataValue.json(lm_report["verdict"])
        meta["lm_budget"] = dg.MetadataValue.json(lm_report["budget"])
        meta["lm_arms_table"] = dg.MetadataValue.md(_arm_table(lm_report["summary"]))
    store.record_asset(context.run.run_id, "evaluation_metrics", CODE_VERSION, config.model_dump(), {k: v for k, v in meta.items() if not isinstance(v, dg.MetadataValue)}, inputs=input_runs(context, ["raw_dataset", "embeddings", "clusters", "curated_subset"]))
    if "utility_subset" in report:
        labels = ["curated", "random (mean)"] + (["full pool"] if "utility_full_pool" in report else [])
        vals = [report["utility_subset"], report["utility_random_mean"]] + ([report["utility_full_pool"]] if "utility_full_pool" in report else [])
        errs = [0.0, report["utility_random_std"]] + ([0.0] if "utility_full_pool" in report else [])
        meta["heldout_utility"] = png_md(plots.bars(labels, vals, "held-out kNN utility (test split)", "utility", errs), "held-out utility")
    if lm_report:
        panels: dict = {}
        for s in lm_report["summary"]:
            labels, means, stds = panels.setdefault(f"{s['benchmark']} ({s['metric']})", ([], [], []))
            labels.append(s["arm"])
            means.append(s["mean"])
            stds.append(s["std"])
        meta["lm_arms"] = png_md(plots.arm_panels(panels, f"target LM after {lm_report['budget']['steps']} LoRA steps per arm"), "LM evaluation arms")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
