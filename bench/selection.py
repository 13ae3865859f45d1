"""Selection methods at growing pool sizes: seconds per method and how each grows.

Usage: python bench/selection.py [--sizes 10000,100000,1000000] [--rows-per-cluster 20]
                                [--fraction 0.1] [--methods qwcs,qocs,...] [--dim 32]

A synthetic pool of N rows in N / rows-per-cluster clusters of random sizes (mean rows-per-cluster),
random proxy scores and random per-row knn_shapley values and response lengths, seeded; every method
selects `fraction` of the pool through `curate`, the path `curated_subset` takes. kcenter runs on
random unit vectors of `--dim` dimensions (its cost grows with them). The table gives the seconds and
b, the growth exponent in t ~ N^b to the previous size.
"""

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from shed_pipeline.core.selection import METHODS, ClusterInfo, SelectionInputs, curate  # noqa: E402


def synthetic_pool(n: int, rows_per_cluster: int, dim: int, seed: int = 0) -> SelectionInputs:
    rng = np.random.default_rng(seed)
    k = max(2, n // rows_per_cluster)
    cluster = np.sort(rng.integers(0, k, size=n))  # cluster sizes ~ Poisson(rows_per_cluster)
    row_ids = [f"r{i:09d}" for i in range(n)]
    bounds = np.searchsorted(cluster, np.arange(k + 1))
    scores = rng.normal(size=k)
    clusters = [
        ClusterInfo(c, float(scores[c]), tuple(row_ids[bounds[c] : bounds[c + 1]]))
        for c in range(k)
        if bounds[c + 1] > bounds[c]
    ]
    cluster_of = dict(zip(row_ids, cluster.tolist(), strict=True))
    lengths = rng.integers(1, 400, size=n)
    outputs = ["x" * int(m) for m in lengths]
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    values = {"knn_shapley": dict(zip(row_ids, rng.normal(size=n).tolist(), strict=True))}
    return SelectionInputs(row_ids, cluster_of, clusters, outputs, vectors, seed=0, row_values=values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--rows-per-cluster", type=int, default=20)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument(
        "--methods", default="random,stratified,longest,qocs,qwcs,coverage,qwcs:knn_shapley,coverage:knn_shapley"
    )
    ap.add_argument("--dim", type=int, default=32)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    arms = a.methods.split(",")
    for arm in arms:
        if arm.split(":")[0] not in METHODS.names:
            sys.exit(f"unknown method {arm.split(':')[0]}; the methods are {', '.join(METHODS.names)}")
    seconds: dict[str, dict[int, float]] = {arm: {} for arm in arms}
    for n in sizes:
        t0 = time.perf_counter()
        inputs = synthetic_pool(n, a.rows_per_cluster, a.dim)
        print(
            f"{n:,} rows, {len(inputs.clusters):,} clusters: pool built in {time.perf_counter() - t0:.1f}s", flush=True
        )
        for arm in arms:
            method, _, order = arm.partition(":")
            settings = {"member_order": order} if order else None
            t0 = time.perf_counter()
            chosen = curate(inputs, method, settings, fraction=a.fraction)
            seconds[arm][n] = time.perf_counter() - t0
            assert len(chosen.selections) == chosen.target
            print(f"  {arm}: {seconds[arm][n]:.2f}s", flush=True)
    print(
        f"\nselection: {os.cpu_count()} CPUs ({platform.machine()}), load {os.getloadavg()[0]:.1f}; {a.fraction:.0%} "
        f"of the pool, ~{a.rows_per_cluster} rows a cluster; seconds, b = growth exponent to the previous size"
    )
    print(f"{'method':<24}" + "".join(f"{n:>18,}" for n in sizes))
    for arm in arms:
        cells = []
        for j, n in enumerate(sizes):
            text = f"{seconds[arm][n]:.2f}s"
            if j and seconds[arm][sizes[j - 1]] > 0:
                text += f" b={math.log(seconds[arm][n] / seconds[arm][sizes[j - 1]]) / math.log(n / sizes[j - 1]):.2f}"
            cells.append(f"{text:>18}")
        print(f"{arm:<24}" + "".join(cells))


if __name__ == "__main__":
    main()
