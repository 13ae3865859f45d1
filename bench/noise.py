"""Does valuation find harmful rows? Corrupt a known share of the pool, curate, count.

Usage: python bench/noise.py [--rows 2000] [--share 0.1] [--utilities knn,probe] [--methods qocs,qwcs,random,auto]
                            [--extra "--samples 200"]

Takes N Natural Instructions rows, gives a `share` of them the output of a row from another task
(a wrong answer that still looks like an answer), writes them as a JSONL source, and runs the main
job once per (utility, method), in one project folder per utility. Prints, for each run, the corrupted
share of the curated subset against the corrupted share of the pool (what a random subset of the
same size holds on average), and the proxies' AUC: the probability that a clean proxy is valued
above a corrupted one. Lower shares and higher AUC are better; TS-DShapley's claim is that low-value rows are the
harmful ones. Method `auto` is QOCS with `--size auto`: the removal-index rule decides how many of the
lowest-valued clusters to drop, and the subset is everything else.

Each utility runs with its own estimator (`--estimators`): knn the exact closed form, probe
TS-DShapley's subset chains, lm Banzhaf MSR. The LM evaluation arms are skipped (`--no-lm-eval`).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--utilities", default="knn,probe", help="comma-separated: knn, probe, lm")
    ap.add_argument("--methods", default="qocs,qwcs,random,auto")
    ap.add_argument("--estimators", default="knn=knn_exact,probe=ts_chains,lm=banzhaf_msr", help="estimator per utility")
    ap.add_argument("--extra", default="", help="more `shed-pipeline run` arguments, e.g. '--estimator banzhaf_msr --samples 200'")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from shed_pipeline.core.natural_instructions import default_cache_dir
    from shed_pipeline.core.records import FieldMapping, row_id_for
    from shed_pipeline.core.sources import load_source

    rows = load_source("natural-instructions", FieldMapping(), a.rows, a.seed, 32_000, 0.1, 0.1, default_cache_dir(), lambda _m: None).rows
    records = rows.select("instruction", "input", "output", "task").to_dicts()
    rng = np.random.default_rng(a.seed)
    bad = set(rng.choice(len(records), size=round(a.share * len(records)), replace=False).tolist())
    corrupted_ids = set()
    for i in sorted(bad):
        r = records[i]
        donors = [j for j in range(len(records)) if records[j]["task"] != r["task"]]
        r["output"] = records[int(rng.choice(donors))]["output"]
        corrupted_ids.add(row_id_for(r["instruction"], r["input"], r["output"]))
    root = Path(tempfile.mkdtemp(prefix="shed_noise_"))
    src = root / "noisy.jsonl"
    with src.open("w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")

    print(f"\n{len(records)} Natural Instructions rows, {len(bad)} ({a.share:.0%}) given another task's output; runs under {root}\n")
    print(f"{'utility':<8} {'method':<7} {'selected':>8} {'corrupted in subset':>20} {'corrupted in pool':>18} {'ratio':>6} {'proxy AUC':>9} {'seconds':>8}")
    for utility in a.utilities.split(","):
        for method in a.methods.split(","):
            home = root / utility  # one project per utility: later methods reuse its embeddings, clusters and scores
            env = {**os.environ, "SHED_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
            estimator = dict(p.split("=") for p in a.estimators.split(",")).get(utility, "banzhaf_msr")
            how = ["--method", "qocs", "--size", "auto"] if method == "auto" else ["--method", method]
            cmd = [sys.executable, "-m", "shed_pipeline.cli", "run", "--source", str(src), "--utility", utility, "--estimator", estimator, *how, "--seed", str(a.seed), "--out", str(home / f"out-{method}"), "--no-lm-eval", "--json", *shlex.split(a.extra)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{utility:<8} {method:<7} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            summary = json.loads(proc.stdout)
            raw = pl.read_parquet(home / "assets" / "raw_dataset.parquet")
            pool = raw.filter(pl.col("split") == "pool")["row_id"].to_list()
            cur = pl.read_parquet(home / "assets" / "curated_subset.parquet")
            picked = cur["row_id"].to_list()
            in_subset = sum(r in corrupted_ids for r in picked) / max(len(picked), 1)
            in_pool = sum(r in corrupted_ids for r in pool) / len(pool)
            auc = proxy_auc(pl.read_parquet(home / "assets" / "proxy_shapley_scores.parquet"), corrupted_ids)
            print(f"{utility:<8} {method:<7} {len(picked):>8} {in_subset:>20.1%} {in_pool:>18.1%} {in_subset / in_pool if in_pool else float('nan'):>6.2f} {auc:>9.3f} {summary['wall_seconds']:>8.1f}")


def proxy_auc(scores: pl.DataFrame, corrupted: set) -> float:
    """P(a clean proxy scores above a corrupted one), ties half: how well the valuation itself finds
    the harmful players (0.5 = chance). The subset's share depends on it only through the clusters
    the corrupted proxies stand for."""
    s = scores["score"].to_numpy()
    bad = np.array([p in corrupted for p in scores["proxy_row_id"]])
    if bad.all() or not bad.any():
        return float("nan")
    diff = s[~bad][:, None] - s[bad][None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


if __name__ == "__main__":
    main()
