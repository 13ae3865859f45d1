"""Every selection method against random subsets of the same size, the full pool and the base model:
the target LM fine-tuned on each (the same epochs over its own rows), scored on the same test rows
and multiple-choice items, compared with the random arms (difference, 95% paired bootstrap interval,
z against the random arms' spread).

Usage: python bench/evaluation.py [--rows 3000] [--source natural-instructions] [--random-seeds 5]
           [--test-rows 256] [--items 150] [--epochs 1 | --steps N] [--utilities knn,probe]
           [--methods ...] [--no-full-pool] [--no-ifd] [--home DIR] [--extra "--clusters 120"]

Builds the pool, embeddings, clusters, row values (knn_shapley, ifd) and proxy scores once per
utility through the pipeline's assets (in-process, one project folder: embeddings and IFD are cached
and the second utility reuses them), computes every method's selection from them with the METHODS
registry at one size (10% of the pool), and evaluates every arm in one pass. Arms are cached in the
project folder: an interrupted bench resumes where it stopped (pass the same --home).

Cost on a 2-core CPU (measured with SmolLM2-135M): a fine-tune step (8 rows of <= 128 tokens) ~5.5 s;
scoring an arm on 256 test rows ~56 s and on 3 x 150 items ~29 s. A 10% arm of a P-row pool at one
epoch: ceil(0.1 P / 8) x 5.5 s + 85 s; the full pool ten times the steps. The default table (21 subset
arms + full pool + base) takes about 95 min at --rows 2000 --extra "--set raw_dataset.test_fraction=0.15"
(300 test rows, pool 1,500) plus the ifd row values; on a GPU pass --device cuda.

Default methods (a method name, or utility:method[:member order] for SHED's cluster methods):
stratified, longest, ifd, kcenter; per utility qocs, qwcs (SHED's), their row-refined variants
(members best first by knn_shapley) and the coverage-aware variant (per-cluster cap, round robin)
with and without row refinement.
"""

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from shed_pipeline.asset_names import ASSET_NAMES  # noqa: E402

ESTIMATOR = {"knn": "knn_exact", "probe": "ts_chains", "lm": "banzhaf_msr"}
BASELINES = ["stratified", "longest", "ifd", "kcenter"]
SHED = ["qocs", "qwcs", "qocs:knn_shapley", "qwcs:knn_shapley", "coverage", "coverage:knn_shapley"]
# What the methods select from: every asset before curated_subset.
PIPELINE_ASSETS = [a for a in ASSET_NAMES if a not in ("curated_subset", "evaluation_metrics")]


def default_methods(utilities: list[str]) -> list[str]:
    return BASELINES + [f"{u}:{m}" for u in utilities for m in SHED]


def build_inputs(a, utility: str, log, settings):
    """The pipeline's frames for one utility (materialized in-process), as selection inputs, and the
    pool and test frames."""
    import dagster as dg
    import polars as pl

    from shed_pipeline.assets import ALL_ASSETS
    from shed_pipeline.cli import build_parser, run_config_from_args
    from shed_pipeline.cli.instance import dagster_instance, ensure_dagster_home
    from shed_pipeline.core.selection.tables import selection_inputs
    from shed_pipeline.resources import resources_for

    argv = [
        "run",
        "--rows",
        str(a.rows),
        "--utility",
        utility,
        "--estimator",
        ESTIMATOR[utility],
        "--seed",
        str(a.seed),
        "--row-values",
        "knn_shapley" + ("" if a.no_ifd else ",ifd"),
    ]
    argv += (["--source", a.source] if a.source else []) + shlex.split(a.extra)
    config = run_config_from_args(build_parser().parse_args(argv))
    config = {"ops": {k: v for k, v in config["ops"].items() if k in PIPELINE_ASSETS}}
    assets = [x for x in ALL_ASSETS if x.key.to_user_string() in PIPELINE_ASSETS]
    t0 = time.perf_counter()
    with dagster_instance(ensure_dagster_home(settings)) as instance:
        result = dg.materialize(assets, resources=resources_for(settings), run_config=config, instance=instance)
    log(f"{utility}: pool, embeddings, clusters, row values and proxy scores in {time.perf_counter() - t0:.0f}s")
    out = {k: result.output_for_node(k) for k in PIPELINE_ASSETS}
    raw, emb = out["raw_dataset"], out["embeddings"]
    pool = raw.filter(pl.col("split") == "pool").join(emb, on="row_id", how="left", maintain_order="left")
    test = raw.filter(pl.col("split") == "test")
    scored = out["clusters"].join(
        out["proxy_shapley_scores"].select("cluster_id", "score"), on="cluster_id", how="left", maintain_order="left"
    )
    inputs = selection_inputs(
        pool.select("row_id", "output", "embedding"), scored, out["row_values"], seed=a.seed, log=log
    )
    return pool.drop("embedding"), test, inputs


def select(inputs, spec: str, size: int) -> list[str]:
    """The row ids a method spec (name, or utility:method[:member order]) picks at `size` rows."""
    from shed_pipeline.core.selection import curate

    parts = spec.split(":")
    name, settings = (
        (parts[0], None) if len(parts) == 1 else (parts[1], {"member_order": parts[2]} if len(parts) > 2 else None)
    )
    return [s.row_id for s in curate(inputs, name, settings, size=size).selections]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rows", type=int, default=3000, help="source rows (pool 80%%, test 10%%); 3000 gives 300 test rows"
    )
    ap.add_argument(
        "--source", help="a `shed-pipeline run --source` value, e.g. bigbench-chat (default natural-instructions)"
    )
    ap.add_argument("--utilities", default="knn,probe")
    ap.add_argument(
        "--methods", help="comma-separated method specs (default: every baseline and SHED variant, see above)"
    )
    ap.add_argument("--random-seeds", type=int, default=5)
    ap.add_argument("--test-rows", type=int, default=256)
    ap.add_argument("--items", type=int, default=150, help="items per multiple-choice task")
    ap.add_argument("--benchmarks", default="social_iqa,strategyqa,sports_understanding")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--steps", type=int, help="a fixed number of steps for every arm instead of epochs")
    ap.add_argument("--fraction", type=float, default=0.1, help="subset size, as a share of the pool")
    ap.add_argument("--no-full-pool", action="store_true")
    ap.add_argument(
        "--no-ifd",
        action="store_true",
        help="skip the ifd row values (the target LM over the whole pool) and the ifd method",
    )
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--extra", default="", help="more `shed-pipeline run` arguments for the pipeline part, e.g. '--clusters 120'"
    )
    ap.add_argument("--home", help="project folder (default: a new temporary one); the same folder resumes")
    a = ap.parse_args()
    home = Path(a.home) if a.home else Path(tempfile.mkdtemp(prefix="shed_eval_"))
    from shed_pipeline.settings import Settings

    overrides = {"SHED_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    run(a, home, Settings.from_env(overrides=overrides))


def run(a, home: Path, settings) -> None:
    import json

    from shed_pipeline.core import lm
    from shed_pipeline.core.evaluation import (
        Arm,
        TrainingPlan,
        comparison,
        evaluate_arms,
        load_choice_items,
        random_rows,
        selected_pool_indices,
        summarize,
    )
    from shed_pipeline.core.selection import target_size
    from shed_pipeline.resources import resources_for

    t_start = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    utilities = [u for u in a.utilities.split(",") if u]
    specs = a.methods.split(",") if a.methods else default_methods(utilities)
    if a.no_ifd:
        specs = [s for s in specs if s != "ifd"]
    inputs_of, pool, test = {}, None, None
    for u in dict.fromkeys([s.split(":")[0] for s in specs if ":" in s] or utilities[:1]):
        pool, test, inputs_of[u] = build_inputs(a, u, log, settings)
    first = next(iter(inputs_of.values()))
    size = target_size(pool.height, a.fraction, None)
    pool_ids = pool["row_id"].to_list()
    # The random arms first: every method is compared with them, so a bench stopped part-way (its
    # arms are cached) can still print the table of the methods it finished (rerun with --methods).
    arms = [Arm("base", 0, ())] + [
        Arm("random", s, random_rows(pool.height, size, s)) for s in range(a.seed, a.seed + a.random_seeds)
    ]
    for spec in specs:
        try:
            ids = select(inputs_of[spec.split(":")[0]] if ":" in spec else first, spec, size)
        except ValueError as exc:
            log(f"{spec}: skipped ({exc})")
            continue
        arms.append(Arm(spec, 0, tuple(int(i) for i in selected_pool_indices(pool_ids, ids))))
    if not a.no_full_pool:
        arms.append(Arm("full_pool", 0, tuple(range(pool.height))))
    paths = resources_for(settings)["paths"]
    model_path = lm.resolve_lm("smollm2-135m-instruct", paths.cache(), log)
    model, tok = lm.load_lm(model_path, device=a.device)
    test = test.sort("row_id").head(a.test_rows)
    benchmarks = {
        k: lm.choice_items(tok, v)
        for k, v in load_choice_items(
            [b for b in a.benchmarks.split(",") if b], a.items, a.seed, paths.cache(), log
        ).items()
    }
    plan = TrainingPlan(epochs=a.epochs, steps=a.steps, seed=a.seed)
    log(
        f"{len(arms)} arms of {size} rows (full pool {pool.height}); {plan.describe()}; {test.height} test rows; "
        f"{', '.join(f'{len(v)} {k} items' for k, v in benchmarks.items())}"
    )
    prompts = lambda f: lm.prompt_texts(tok, f["instruction"], f["input"], lm.messages_column(f), log)  # noqa: E731
    records = evaluate_arms(
        model,
        tok,
        arms,
        pool_prompts=prompts(pool),
        pool_targets=pool["output"].to_list(),
        test_prompts=prompts(test),
        test_targets=test["output"].to_list(),
        benchmarks=benchmarks,
        plan=plan,
        log=log,
        cache_dir=home / "bench_arms",
        model_key=lm.model_fingerprint(model_path),
    )
    rows = comparison.compare(records, a.bootstrap, a.seed)
    (home / "bench_evaluation.json").write_text(
        json.dumps(
            {"args": vars(a), "training": plan.as_dict(), "records": records, "comparisons": rows},
            indent=1,
            default=str,
        )
    )
    print_table(
        a,
        plan,
        size,
        pool.height,
        test.height,
        benchmarks,
        records,
        rows,
        summarize(records),
        time.perf_counter() - t_start,
        home,
    )


def print_table(a, plan, size, pool_rows, test_rows, benchmarks, records, rows, summary, seconds, home) -> None:
    from shed_pipeline.core.evaluation import BENCHMARKS_MEAN, cell

    benches = ["test_split", *benchmarks, BENCHMARKS_MEAN]
    print(
        f"{a.source or 'natural-instructions'}, {a.rows} rows: subsets of {size} of {pool_rows} pool rows; "
        f"{plan.describe()}; {test_rows} test rows, {a.items} items per task; {a.random_seeds} random seeds; "
        f"{seconds / 60:.0f} min; {home}\n"
    )
    print("Random arms (mean ± sample std over seeds; the noise an arm must beat):")
    rand = {s["benchmark"]: s for s in summary if s["arm"] == "random"}
    for b in benches[:-1]:
        if b in rand:
            print(f"  {b:<22} {rand[b]['mean']:.4f} ± {rand[b]['std']:.4f}")
    by = {(r["arm"], r["benchmark"]): r for r in rows}
    print("\nEach arm: mean, difference to random [95% paired bootstrap interval], z = difference / random std")
    print("| method | " + " | ".join(benches) + " |")
    print("|---" * (len(benches) + 1) + "|")
    for arm in dict.fromkeys(r["arm"] for r in rows):
        cells = [f"{by[(arm, b)]['arm_mean']:.3f} {cell(by[(arm, b)])}" if (arm, b) in by else "-" for b in benches]
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
