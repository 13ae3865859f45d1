"""Incremental refresh against a full run, on the default data (issue 3's benchmark).

Usage: python bench/refresh.py [--rows N] [--share 0.01] [--estimator shed_grouped] [--home DIR]

Exports N Natural Instructions rows (default 10,000, the default data) to a JSONL file source, runs
the main job once from scratch, then refreshes twice in the same project folder:
  1. append:  `share` more rows appended to the file (1% by default);
  2. edit:    the outputs of `share` of the original rows rewritten in place.
Every run is `shed-pipeline run --json` in a subprocess. Prints wall time (the job, and the whole
process including Python start-up and model loading) with its ratio to the full run (target <= 10%),
and the utility evaluations against the share of coalitions holding a new proxy (target: the
evaluated share is at most that share).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def export(rows, path: Path) -> None:
    with path.open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def run(env, argv) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "shed_pipeline.cli", "run", *argv, "--no-lm-eval", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--share", type=float, default=0.01)
    ap.add_argument(
        "--estimator", default="shed_grouped", help="a sampling estimator, so utility evaluations go through the cache"
    )
    ap.add_argument("--permutations", type=int, default=20)
    ap.add_argument("--home", help="project folder (default: a temporary one)")
    a = ap.parse_args()

    from shed_pipeline.core.sources import FieldMapping, load_source
    from shed_pipeline.settings import Settings

    extra = round(a.rows * a.share)
    settings = Settings.from_env()
    loaded = load_source(
        "natural-instructions",
        FieldMapping(),
        rows=a.rows + extra,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=settings.downloads,
        log=lambda _m: None,
        bigbench_archive=settings.bigbench_archive,
    )
    records = loaded.rows.select("instruction", "input", "output", "task").to_dicts()
    base, appended = records[: a.rows], records[a.rows :]
    home = Path(a.home or tempfile.mkdtemp(prefix="shed_refresh_"))
    src = home / "source" / "data.jsonl"
    src.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SHED_PIPELINE_HOME": str(home / "project"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    argv = [
        "--source",
        str(src),
        "--estimator",
        a.estimator,
        "--permutations",
        str(a.permutations),
        "--out",
        str(home / "out"),
    ]

    export(base, src)
    results = [("full run", *run(env, argv))]
    export(base + appended, src)
    results.append((f"append {a.share:.0%} ({len(appended)} rows)", *run(env, argv)))
    # Edit: rewrite the outputs of every 1/share-th original row (spread over the file and the tasks).
    step = max(1, round(1 / a.share))
    edited = [dict(r, output=r["output"] + " (revised)") if i % step == step // 2 else r for i, r in enumerate(base)]
    export(edited + appended, src)
    results.append(
        (f"edit {a.share:.0%} ({sum(1 for i in range(len(base)) if i % step == step // 2)} rows)", *run(env, argv))
    )

    full_job, full_proc = results[0][1]["wall_seconds"], results[0][2]
    print(
        f"\nincremental refresh, {a.rows} Natural Instructions rows as a JSONL source, estimator {a.estimator} "
        f"({a.permutations} permutations)"
    )
    print(f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), project {home}\n")
    head = (
        f"{'scenario':<24} {'job s':>7} {'ratio':>6} {'proc s':>7} {'ratio':>6} {'new rows':>8} {'embedded':>8} "
        f"{'clusters':>11} {'refit':>5} {'evals':>6} {'coalitions':>10} {'eval share':>10} {'affected share':>14}"
    )
    print(head)
    print("-" * len(head))
    for name, s, proc in results:
        w = s["work"]
        sc, cl = w["proxy_shapley_scores"], w["clusters"]
        coal = sc["coalitions"] or 0
        eval_share = sc["utility_evaluations"] / coal if coal else 0.0
        aff_share = sc["coalitions_with_new_players"] / coal if coal else 0.0
        print(
            f"{name:<24} {s['wall_seconds']:>7.1f} {s['wall_seconds'] / full_job:>6.1%} {proc:>7.1f} "
            f"{proc / full_proc:>6.1%} "
            f"{w['raw_dataset']['rows_new']:>8} {w['embeddings']['rows_embedded']:>8} "
            f"{cl['clusters_affected']:>5}/{cl['clusters_total']:<5} {'yes' if cl['full_refit'] else 'no':>5} "
            f"{sc['utility_evaluations']:>6} {coal:>10} {eval_share:>10.1%} {aff_share:>14.1%}"
        )
    print(
        "\ntargets: refresh job time <= 10% of the full run; eval share <= affected share (coalitions holding a new "
        "proxy)"
    )
    for name, s, _ in results[1:]:
        print(f"{name}: seconds per asset {json.dumps(s['seconds'])}")


if __name__ == "__main__":
    main()
