"""The main job on the default data, wall time per asset (target: under 5 minutes on a 2-core CPU).

Usage: python bench/pipeline.py [--rows N] [--home DIR] [--keep-cache]
Runs `shed-pipeline run --json` in a fresh project folder (so nothing is reused, except the
downloaded Natural Instructions archive) and prints a table. --keep-cache reuses the folder's
embedding cache, to show a re-run's cost.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--home", help="project folder to run in (default: a temporary one)")
    ap.add_argument("--keep-cache", action="store_true")
    ap.add_argument("--method", help="selection method (default: the pipeline's default)")
    a = ap.parse_args()
    home = Path(a.home or tempfile.mkdtemp(prefix="shed_bench_"))
    if home.exists() and not a.keep_cache:
        shutil.rmtree(home)
    env = {**os.environ, "SHED_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    cmd = [
        sys.executable,
        "-m",
        "shed_pipeline.cli",
        "run",
        "--rows",
        str(a.rows),
        *(["--method", a.method] if a.method else []),
        "--out",
        str(home / "out"),
        "--no-lm-eval",
        "--json",
    ]  # the LM arms: bench/evaluation.py
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr.strip().splitlines()[-1])
    s = json.loads(proc.stdout)
    print(
        f"\nmain job, {a.rows} Natural Instructions rows, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), home {home}\n"
    )
    print(f"{'asset':<22} {'seconds':>8}")
    for name, sec in s["seconds"].items():
        print(f"{name:<22} {sec:>8.1f}")
    print(f"{'total (wall, in-process)':<22} {s['wall_seconds']:>8.1f}   target < 300 s")
    c = s["counts"]
    print(
        f"\nrows in {c['rows_in']}, quarantined {c['rows_quarantined']}, embedded {c['rows_embedded']} (reused "
        f"{c['rows_embedding_reused']}), clusters {c['clusters']}, selected {c['selected']}"
    )
    ev = s["assets"]["evaluation_metrics"]
    print(
        f"held-out kNN utility: curated {ev.get('utility_subset', float('nan')):.4f}, random "
        f"{ev.get('utility_random_mean', float('nan')):.4f} +- {ev.get('utility_random_std', float('nan')):.4f}, full "
        f"pool {ev.get('utility_full_pool', float('nan')):.4f}"
    )


if __name__ == "__main__":
    main()
