"""The evaluation report of a run: the curated subset, baseline selections of the same size, random
subsets and the full pool, model-free (coverage, held-out kNN utility) and, optionally, with the
target LM fine-tuned on each and compared with the random arms (comparison.py).

`settings` is any object with the fields of assets/evaluate.py's EvaluationConfig.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from shed_pipeline.core.evaluation.model_free import arm_metrics, subset_report
from shed_pipeline.core.progress import Log

RESERVED = ("base", "curated", "random", "full_pool")


def baseline_selections(
    inputs, names: Sequence[str], size: int, curated_method: str | None, log: Log
) -> dict[str, list[str]]:
    """Row ids each selection method in `names` picks at `size` rows (SelectionInputs `inputs`), by
    name. A method that is the curated one, or whose requirements are not met (row values not
    computed, clusters not valued), is skipped with a logged reason; an unknown name fails."""
    from shed_pipeline.core.selection import METHODS, curate

    out: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        if name not in list(METHODS):
            raise ValueError(f"unknown baseline {name!r}: baselines are selection methods, one of {', '.join(METHODS)}")
        if name == "random":
            log("baseline random: skipped (the random arms are always evaluated)")
        elif name == curated_method:
            log(f"baseline {name}: skipped (it is the curated subset's method)")
        else:
            try:
                out[name] = [s.row_id for s in curate(inputs, name, None, size=size).selections]
            except ValueError as exc:  # a requirement not met: say which, evaluate the rest
                log(f"baseline {name}: skipped ({exc})")
    return out


def evaluation_report(
    settings,
    pool: pl.DataFrame,
    x: np.ndarray,
    *,
    pool_clusters: Sequence[int],
    test: pl.DataFrame,
    curated_idx: np.ndarray,
    baselines: dict[str, np.ndarray],
    device: str,
    cache_dir: Path,
    arms_cache: Path | None,
    log: Log,
    on_arm_done=None,
    bigbench_archive: Path | None = None,
) -> dict:
    """Model-free metrics of every arm; with `settings.lm`, the LM arms, their summary and the
    comparison with the random arms. `pool`: pool rows (row_id, instruction, input, output, task,
    optional messages) aligned with `x`; `test`: test rows with their `embedding`."""
    seeds = [settings.seed + i for i in range(settings.random_seeds)]
    # A fixed sample of the test split (the first by row id) for the held-out kNN utility: its cost is
    # test rows x pool rows per arm, and a few thousand rows measure it closely at any pool size.
    held = (
        test.sort("row_id").head(settings.heldout_rows)
        if settings.heldout_rows and test.height > settings.heldout_rows
        else test
    )
    test_x = held["embedding"].to_numpy() if held.height else x[:0]
    refs = held["output"].to_list()
    outputs, tasks = pool["output"].to_list(), pool["task"].to_list()
    report = subset_report(
        curated_idx,
        x,
        pool_outputs=outputs,
        pool_clusters=pool_clusters,
        pool_tasks=tasks,
        test_vectors=test_x,
        test_references=refs,
        k=settings.k,
        random_seeds=seeds,
        include_full_pool=settings.include_full_pool,
    )
    report["test_rows"] = held.height
    report["baselines"] = {
        name: arm_metrics(
            idx,
            x,
            pool_outputs=outputs,
            pool_clusters=pool_clusters,
            pool_tasks=tasks,
            test_vectors=test_x,
            test_references=refs,
            k=settings.k,
        )
        for name, idx in baselines.items()
    }
    if settings.lm:
        report["lm"] = lm_arms_report(
            settings,
            pool,
            test,
            curated_idx=curated_idx,
            baselines=baselines,
            device=device,
            cache_dir=cache_dir,
            log=log,
            arms_cache=arms_cache,
            on_arm_done=on_arm_done,
            bigbench_archive=bigbench_archive,
        )
    return report


def lm_arms_report(
    settings,
    pool: pl.DataFrame,
    test: pl.DataFrame,
    *,
    curated_idx,
    baselines: dict[str, np.ndarray],
    device: str,
    cache_dir: Path,
    log: Log,
    arms_cache: Path | None = None,
    on_arm_done=None,
    bigbench_archive: Path | None = None,
) -> dict:
    """Fine-tune and score every arm on the same test rows (`settings.test_rows`, the first by row
    id: a fixed sample) and items; the records with per-item scores, their summary, and the
    comparison. Chat rows are prompted with their turns (`messages`)."""
    from shed_pipeline.core import lm
    from shed_pipeline.core.evaluation import lm_arms
    from shed_pipeline.core.evaluation.benchmarks import load_choice_items
    from shed_pipeline.core.evaluation.comparison import compare

    path = lm.resolve_lm(settings.lm_model, cache_dir, log)
    model, tok = lm.load_lm(path, device=device)
    plan = lm_arms.TrainingPlan(
        epochs=settings.epochs,
        steps=settings.steps,
        lr=settings.lm_lr,
        rank=settings.lm_rank,
        alpha=2 * settings.lm_rank,
        batch_size=settings.lm_batch_size,
        max_tokens=settings.lm_max_tokens,
        seed=settings.seed,
    )
    test = test.sort("row_id").head(settings.test_rows) if settings.test_rows else test
    raw_items = (
        load_choice_items(
            settings.benchmarks,
            settings.benchmark_items,
            settings.seed,
            cache_dir,
            log,
            archive=bigbench_archive,
        )
        if settings.benchmarks
        else {}
    )
    benchmarks = {name: lm.choice_items(tok, items) for name, items in raw_items.items()}
    arms = lm_arms.plan_arms(
        pool.height,
        curated_idx,
        [settings.seed + i for i in range(settings.random_seeds)],
        include_full_pool=settings.include_full_pool,
        baselines=baselines,
    )
    fingerprint = lm.model_fingerprint(path)
    signature = lm.device_signature(device)  # results depend on the device's arithmetic and the library versions
    cache = arms_cache / hashlib.sha256(signature.encode()).hexdigest()[:16] if arms_cache is not None else None
    pool_prompts = lm.prompt_texts(tok, pool["instruction"], pool["input"], lm.messages_column(pool), log)
    test_prompts = lm.prompt_texts(tok, test["instruction"], test["input"], lm.messages_column(test), log)
    items = ", ".join(f"{len(v)} {k} items" for k, v in benchmarks.items()) or "no benchmarks"
    log(f"evaluation: {len(arms)} arms, {plan.describe()}; {test.height} test rows, {items}")
    records = lm_arms.evaluate_arms(
        model,
        tok,
        arms,
        pool_prompts=pool_prompts,
        pool_targets=pool["output"].to_list(),
        test_prompts=test_prompts,
        test_targets=test["output"].to_list(),
        benchmarks=benchmarks,
        plan=plan,
        log=log,
        cache_dir=cache,
        model_key=fingerprint,
        on_arm_done=on_arm_done,
    )
    return {
        "model_path": str(path),
        "model_fingerprint": fingerprint,
        "device": device,
        "device_signature": signature,
        "training": plan.as_dict(),
        "test_rows": test.height,
        "benchmark_items": {k: len(v) for k, v in benchmarks.items()},
        "records": records,
        "summary": lm_arms.summarize(records),
        "comparisons": compare(records, settings.bootstrap, settings.seed),
    }


def metrics_frame(report: dict) -> pl.DataFrame:
    """The `evaluations` lineage table: every scalar of the report (baselines' as
    baseline_<name>_<metric>; LM arms' as lm_<benchmark>_<arm>_mean / _std, with a JSON detail)."""
    scalars = {k: v for k, v in report.items() if _scalar(v)}
    scalars.update(
        {
            f"baseline_{name}_{k}": v
            for name, m in report.get("baselines", {}).items()
            for k, v in m.items()
            if _scalar(v)
        }
    )
    detail: list[str | None] = [None] * len(scalars)
    for s in report.get("lm", {}).get("summary", []):  # e.g. lm_social_iqa_curated_mean
        for stat in ("mean", "std"):
            scalars[f"lm_{s['benchmark']}_{s['arm']}_{stat}"] = s[stat]
            detail.append(
                json.dumps(
                    {"benchmark": s["benchmark"], "metric": s["metric"], "arm": s["arm"], "stat": stat, "n": s["n"]}
                )
            )
    return pl.DataFrame(
        {"metric": list(scalars), "value": [float(v) for v in scalars.values()], "detail": detail},
        schema={"metric": pl.Utf8, "value": pl.Float64, "detail": pl.Utf8},
    )


def arms_frame(records: Sequence[dict]) -> pl.DataFrame:
    """The `evaluation_arms` lineage table (per arm and benchmark; without the per-item scores)."""
    cols = {
        "arm": pl.Utf8,
        "replicate": pl.Int64,
        "subset_size": pl.Int64,
        "benchmark": pl.Utf8,
        "metric": pl.Utf8,
        "value": pl.Float64,
        "steps": pl.Int64,
    }
    return pl.DataFrame([{c: r[c] for c in cols} for r in records], schema=cols)


def _scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
