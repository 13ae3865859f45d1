"""SHED's claim, measured: the target LM fine-tuned on the curated subset vs random subsets of the
same size vs the full pool, per utility and selection method.

Usage: python bench/evaluation.py [--rows 10000] [--runs knn:qocs,knn:qwcs,probe:qocs,probe:qwcs]
                                  [--extra "--eval-steps 12"] [--home DIR]

Runs the main job (`shed-pipeline run`, LM arms on) once per utility:method in one project folder,
so embeddings, clusters and the base / random / full-pool arms (same rows, same budget) are computed
once and reused from the caches; each run then fine-tunes its own curated arm. Prints one table per
run (benchmark x arm: mean, and the random arms' spread) and the verdict: curated at or above the
random mean, and within two random standard deviations of the full pool.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ESTIMATOR = {"knn": "knn_exact", "probe": "ts_chains", "lm": "banzhaf_msr"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--runs", default="knn:qocs,knn:qwcs,probe:qocs,probe:qwcs", help="utility:method pairs")
    ap.add_argument("--extra", default="", help="more `shed-pipeline run` arguments")
    ap.add_argument("--home", help="project folder (default: a new temporary one)")
    a = ap.parse_args()
    home = Path(a.home) if a.home else Path(tempfile.mkdtemp(prefix="shed_eval_"))
    env = {**os.environ, "SHED_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    print(f"{a.rows} Natural Instructions rows; project folder {home}\n")
    for pair in a.runs.split(","):
        utility, method = pair.split(":")
        out = home / f"out-{utility}-{method}"
        cmd = [sys.executable, "-m", "shed_pipeline.cli", "run", "--rows", str(a.rows), "--utility", utility, "--estimator", ESTIMATOR[utility], "--method", method, "--out", str(out), "--json", *shlex.split(a.extra)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{pair}: failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}\n")
            continue
        summary = json.loads(proc.stdout)
        report = json.loads((out / "evaluation.json").read_text())["lm"]
        secs = summary["seconds"]
        print(f"== {utility} utility, {method}: {report['budget']['steps']} LoRA steps per arm, {report['test_rows']} test rows, {time.perf_counter() - t0:.0f}s (scores {secs['proxy_shapley_scores']:.0f}s, evaluation {secs['evaluation_metrics']:.0f}s)")
        by: dict = {}
        for s in report["summary"]:
            by.setdefault(s["benchmark"], {})[s["arm"]] = s
        print(f"{'benchmark':<22} {'base':>8} {'curated':>8} {'random (mean ± std)':>22} {'full pool':>9}  verdict")
        for bench, arms in by.items():
            v = report["verdict"].get(bench, {})
            r = arms.get("random")
            cell = lambda k, arms=arms: f"{arms[k]['mean']:.4f}" if k in arms else "-"  # noqa: E731
            rand = f"{r['mean']:.4f} ± {r['std']:.4f}" if r else "-"
            verdict = ("≥ random" if v.get("at_or_above_random") else "< random") + ("" if v.get("within_noise_of_full_pool") is None else (", ≈ full" if v["within_noise_of_full_pool"] else ", ≠ full"))
            print(f"{bench:<22} {cell('base'):>8} {cell('curated'):>8} {rand:>22} {cell('full_pool'):>9}  {verdict}")
        print()


if __name__ == "__main__":
    main()
