"""Does curation keep harmful rows out? Corrupt a known share of the pool, select with every method, count.

Usage: python bench/noise.py [--rows 1000] [--share 0.1] [--seeds 5] [--utilities knn,probe]
                            [--row-values knn_shapley,ifd] [--ifd-max-tokens 128] [--fraction 0.1] [--home DIR]

Takes N Natural Instructions rows, gives a `share` of them the output of a row from another task (a
wrong answer that still looks like an answer) and writes them as a JSONL source. The pipeline runs
once per utility (`shed-pipeline run`, no LM evaluation) in one project folder, so the utilities
share the embeddings and the clusters; the per-row values are computed on its pool with the same
core function as the `row_values` asset (IFD is kept in the project's cache: `--home` reuses it).
Then every selection method of the registry (core/selection METHODS), and each SHED method with
its members ordered by each per-row value ("qocs/knn_shapley"), selects `fraction` of the pool from
those tables with the same core function as `curated_subset`, for `seeds` selection seeds.

Prints the corrupted share of each subset (mean and std over the seeds; "-" where the seed changes
nothing) against the pool's (what a random subset holds on average), their ratio (the issue's target:
at most 1/3), and the AUC of each value for telling corrupted rows from clean ones: P(a clean row is
valued above a corrupted one), ties half (0.5 = chance; low value = corrupted). For IFD, where a high
value is the bad sign, the AUC is also given for Superfiltering's order (IFD < 1 highest first).
A method that does not read the proxy scores gives the same subset under every utility: shown once.

Cost on a 2-core CPU at 1,000 rows (pool 785): pipeline knn 158 s, probe 341 s, knn_shapley < 1 s,
IFD 1,150 s (SmolLM2, 128 tokens), all selections 2 s. `--row-values knn_shapley` skips IFD (and the
methods that need it); a GPU scores IFD in seconds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ESTIMATOR = {"knn": "knn_exact", "probe": "ts_chains", "lm": "banzhaf_msr"}


def corrupted_source(rows: int, share: float, seed: int, root: Path) -> tuple[Path, set[str]]:
    """A JSONL source of `rows` Natural Instructions rows, `share` of them with another task's output."""
    from shed_pipeline.core.sources import FieldMapping, load_source, row_id_for
    from shed_pipeline.settings import Settings

    settings = Settings.from_env()
    loaded = load_source(
        "natural-instructions",
        FieldMapping(),
        rows=rows,
        seed=seed,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=settings.downloads,
        log=lambda _m: None,
        bigbench_archive=settings.bigbench_archive,
    ).rows
    records = loaded.select("instruction", "input", "output", "task").to_dicts()
    rng = np.random.default_rng(seed)
    bad = set(rng.choice(len(records), size=round(share * len(records)), replace=False).tolist())
    corrupted = set()
    for i in sorted(bad):
        r = records[i]
        donors = [j for j in range(len(records)) if records[j]["task"] != r["task"]]
        r["output"] = records[int(rng.choice(donors))]["output"]
        corrupted.add(row_id_for(r["instruction"], r["input"], r["output"]))
    src = root / "noisy.jsonl"
    with src.open("w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return src, corrupted


def run_pipeline(src: Path, home: Path, utility: str, seed: int) -> float:
    """One `shed-pipeline run` with this utility (its own estimator); wall seconds."""
    env = {**os.environ, "SHED_PIPELINE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    cmd = [
        sys.executable,
        "-m",
        "shed_pipeline.cli",
        "run",
        "--source",
        str(src),
        "--utility",
        utility,
        "--estimator",
        ESTIMATOR.get(utility, "banzhaf_msr"),
        "--method",
        "random",
        "--seed",
        str(seed),
        "--out",
        str(home / f"out-{utility}"),
        "--no-lm-eval",
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pipeline with utility {utility} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - t0


def auc(values, bad) -> float:
    """P(a clean row's value > a corrupted row's), ties half; nan without both kinds."""
    values, bad = np.asarray(values, dtype=np.float64), np.asarray(bad, dtype=bool)
    if bad.all() or not bad.any():
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(values)  # average ranks: ties count half (Mann-Whitney U)
    n_bad, n_clean = int(bad.sum()), int((~bad).sum())
    return float((ranks[~bad].sum() - n_clean * (n_clean + 1) / 2) / (n_clean * n_bad))


def variants(row_kinds: list[str]) -> list[tuple[str, str, dict]]:
    """(label, method, settings): every registered method with its defaults, and each method that
    orders a cluster's members (`member_order`) once per per-row value kind."""
    from shed_pipeline.core.selection import METHODS

    out = []
    for name in METHODS.names:
        out.append((name, name, {}))
        if "member_order" in {f.name for f in METHODS[name].fields()}:
            out += [(f"{name}/{kind}", name, {"member_order": kind}) for kind in row_kinds]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--rows",
        type=int,
        default=1000,
        help=(
            "Natural Instructions rows (a small pool for the CPU: about 28 min at 1,000 rows on a busy 2-core CPU, 19 "
            "of them IFD, which --home keeps for a rerun)"
        ),
    )
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument(
        "--seeds", type=int, default=5, help="selection seeds per method (the pipeline itself runs with seed 0)"
    )
    ap.add_argument(
        "--utilities",
        default="knn,probe",
        help="comma-separated: knn, probe, lm (each with its own estimator: knn_exact, ts_chains, banzhaf_msr)",
    )
    ap.add_argument(
        "--row-values", default="knn_shapley,ifd", help="per-row value kinds to compute (and order members by)"
    )
    ap.add_argument(
        "--ifd-max-tokens",
        type=int,
        default=128,
        help="tokens per IFD sequence (the asset's default is 256; 128 halves the CPU time)",
    )
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument(
        "--home", help="project folder to use (and reuse: cached embeddings and IFD); default a new temporary one"
    )
    a = ap.parse_args()
    start = time.perf_counter()

    from shed_pipeline.core.row_values import ROW_VALUES, RowValueInputs, compute_row_values
    from shed_pipeline.core.selection import METHODS, curate
    from shed_pipeline.core.selection.base import value_key
    from shed_pipeline.core.selection.tables import selection_inputs
    from shed_pipeline.settings import Settings

    root = Path(a.home) if a.home else Path(tempfile.mkdtemp(prefix="shed_noise_"))
    root.mkdir(parents=True, exist_ok=True)
    src, corrupted = corrupted_source(a.rows, a.share, 0, root)
    home = root / "project"
    utilities = [u for u in a.utilities.split(",") if u]
    kinds = [k for k in a.row_values.split(",") if k]
    print(
        f"\n{a.rows} Natural Instructions rows, {len(corrupted)} ({a.share:.0%}) given another task's output; a small "
        f"pool for the CPU (say so when quoting); project under {home}"
    )
    seconds: dict[str, float] = {}
    scored: dict[str, pl.DataFrame] = {}
    for utility in utilities:
        print(f"  running the pipeline with utility {utility} ...", flush=True)
        seconds[f"pipeline ({utility})"] = run_pipeline(src, home, utility, 0)
        clusters = pl.read_parquet(home / "assets" / "clusters.parquet")
        scores = pl.read_parquet(home / "assets" / "proxy_shapley_scores.parquet")
        scored[utility] = clusters.join(
            scores.select("cluster_id", "score", "proxy_row_id"),
            on=["cluster_id", "proxy_row_id"],
            how="left",
            maintain_order="left",
        )
    raw = pl.read_parquet(home / "assets" / "raw_dataset.parquet")
    rows = raw.join(
        pl.read_parquet(home / "assets" / "embeddings.parquet"), on="row_id", how="inner", maintain_order="left"
    )
    pool, validation = rows.filter(pl.col("split") == "pool"), rows.filter(pl.col("split") == "validation")
    settings = {"ifd": ROW_VALUES["ifd"].configure({"max_tokens": a.ifd_max_tokens})} if "ifd" in kinds else {}
    values, stats = compute_row_values(
        kinds,
        settings,
        RowValueInputs(
            pool,
            validation,
            device="cpu",
            cache_dir=Settings.from_env().downloads,
            feature_cache=home / "cache" / "embeddings.duckdb",
            log=lambda m: print("  " + m),
        ),
    )
    for kind, s in stats.items():
        seconds[f"row values ({kind})"] = s["seconds"]
    pool_ids = pool["row_id"].to_list()
    in_pool = np.mean([r in corrupted for r in pool_ids])

    print(
        f"\npool {len(pool_ids)} rows, {in_pool:.1%} corrupted; subsets of {a.fraction:.0%}; {a.seeds} selection "
        "seeds (mean ± std; '-': the seed changes nothing)"
    )
    header = (
        f"{'utility':<8} {'method':<26} {'rows':>5} {'corrupted in subset':>20} {'std':>6} {'ratio to pool':>13} "
        f"{'<= 1/3':>6}"
    )
    print(header + "\n" + "-" * len(header))
    t_sel = time.perf_counter()
    for label, method, method_settings in variants(kinds):
        runs: dict[str, list[list[str]]] = {}
        try:
            for utility in utilities:
                inputs = [
                    selection_inputs(pool.select("row_id", "output", "embedding"), scored[utility], values, seed=seed)
                    for seed in range(a.seeds)
                ]
                runs[utility] = [
                    [
                        s.row_id
                        for s in curate(
                            x, method, METHODS[method].configure(method_settings), fraction=a.fraction
                        ).selections
                    ]
                    for x in inputs
                ]
        except ValueError as exc:  # e.g. a per-row value that was not computed
            print(f"{'':<8} {label:<26} skipped: {exc}")
            continue
        same = all(runs[u] == runs[utilities[0]] for u in utilities)  # the method ignores the proxy scores
        for utility in utilities[:1] if same else utilities:
            picks = runs[utility]
            shares = [np.mean([r in corrupted for r in ids]) for ids in picks]
            std = f"{np.std(shares):>6.1%}" if any(p != picks[0] for p in picks) else f"{'-':>6}"
            ratio = np.mean(shares) / in_pool if in_pool else float("nan")
            print(
                f"{'any' if same and len(utilities) > 1 else utility:<8} {label:<26} {len(picks[0]):>5} "
                f"{np.mean(shares):>20.1%} {std} {ratio:>13.2f} {'yes' if ratio <= 1 / 3 else 'no':>6}"
            )
    seconds["selection (all methods and seeds)"] = time.perf_counter() - t_sel

    print(
        "\nAUC of each value for telling corrupted rows from clean ones (P(clean valued above corrupted); 0.5 = chance)"
    )
    bad = np.array([r in corrupted for r in pool_ids])
    for kind in kinds:
        v = values.filter(pl.col("kind") == kind)["value"].to_numpy()
        line = f"  {kind:<28} over {len(v)} pool rows: {auc(v, bad):.3f}"
        if kind == "ifd":  # Superfiltering's preference: IFD < 1 highest first, then IFD >= 1 lowest first
            pref = [-(k[0] * 1e6) - k[1] for k in (value_key("ifd", float(x)) for x in v)]
            line += f"   (Superfiltering's order: {auc(pref, bad):.3f})"
        print(line)
    for utility in utilities:
        s = scored[utility].filter(pl.col("score").is_not_null())
        print(
            f"  proxy values ({utility:<5})          over {s.height} proxies: "
            f"{auc(s['score'].to_numpy(), [p in corrupted for p in s['proxy_row_id']]):.3f}"
        )
    print(
        "\nseconds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + f"; total {time.perf_counter() - start:.0f}"
    )


if __name__ == "__main__":
    main()
