"""Estimator error against the number of utility evaluations, on games whose exact values are known.

Usage: python bench/estimators.py [--budgets 100,300,1000,3000] [--seeds 5]

Games:
  sqrt-K10    U(S) = sqrt(sum of the members' weights) on 10 players (diminishing returns);
  noisy-K10   the same plus noise fixed per coalition (5% of the range), like a fine-tuned model's
              score: exact Shapley and Banzhaf values of both by enumeration (2^10 coalitions)
  knn-K100    the kNN game on 100 players of random quality and 50 validation rows: exact Shapley values in closed
              form (Jia et al. 2019). Banzhaf has no closed form here and is left out.
Estimators: tmc (no truncation), shed_grouped (group size 1 on the table game, ceil(K/50) otherwise),
banzhaf_msr. A budget is a number of utility *calls*; each estimator gets the largest number of
permutations / samples that fits. Error: relative L2 distance to the exact values, and Spearman rank
correlation (what selection by rank depends on), mean over seeds.

pyDVL's implementations of TMC and MSR-Banzhaf run on the same games and budgets with
--pydvl-python (pyDVL pins numpy < 2, so it gets a virtual environment of its own; see bench_pydvl.py).
"""

import argparse
import math

import numpy as np

from shed_pipeline.core.estimators import (
    banzhaf_msr,
    exact_banzhaf,
    exact_shapley,
    knn_shapley,
    shed_grouped,
    tmc_shapley,
)
from shed_pipeline.core.utilities import CachedUtility, KNNUtility


class TableGame:
    def __init__(self, values: np.ndarray):
        self.vals = values
        self.n_players = int(math.log2(len(values)))
        self._w = 1 << np.arange(self.n_players)

    def value(self, members) -> float:
        return float(self.vals[int(np.asarray(members, dtype=bool) @ self._w)])


def games(rng):
    n = 10
    w = rng.random(n)
    bits = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    smooth = np.sqrt(bits @ w)  # diminishing returns: players substitute for each other
    for name, vals in (
        ("sqrt-K10", smooth),
        ("noisy-K10", smooth + rng.normal(scale=0.05 * smooth.max(), size=1 << n)),
    ):
        vals = vals - vals[0]  # U(empty) = 0
        table = TableGame(vals)
        yield name, table, exact_shapley(table).values, exact_banzhaf(table).values
    order = np.argsort(rng.random((50, 100)), axis=1)
    quality = rng.random(100)  # some players answer well everywhere, some badly: values differ for real
    match = np.clip(quality[None, :] + rng.normal(scale=0.2, size=(50, 100)), 0, 1)
    knn = KNNUtility.from_matrices(order, match, 5)
    yield "knn-K100", knn, knn_shapley(knn).values, None


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def rel_err(est, exact) -> float:
    return float(np.linalg.norm(est - exact) / max(np.linalg.norm(exact), 1e-12))


def run_ours(name, game, budget, seed):
    k = game.n_players
    u = CachedUtility(game)
    if name == "tmc":
        res = tmc_shapley(u, permutations=max(1, (budget - 2) // k), seed=seed)
    elif name == "shed_grouped":
        g = 1 if k <= 12 else math.ceil(k / 50)
        res = shed_grouped(u, permutations=max(1, (budget - 2) // (math.ceil(k / g) + 1)), seed=seed, group_size=g)
    else:
        res = banzhaf_msr(u, samples=max(2, budget), seed=seed)
    return res.values, u.evaluations + u.cache_hits


def pydvl_results(python: str, game_list, jobs) -> dict:
    """Run bench_pydvl.py in pyDVL's own environment; {(game, estimator, budget, seed): (values, calls)}."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    arrays = {}
    for gname, game, _, _ in game_list:
        if isinstance(game, TableGame):
            arrays[f"{gname}.vals"] = game.vals
        else:
            arrays[f"{gname}.order"], arrays[f"{gname}.match"], arrays[f"{gname}.k"] = (
                game.order,
                game.match,
                np.array(game.k),
            )
    with tempfile.TemporaryDirectory() as tmp:
        games_file, jobs_file, out_file = (Path(tmp) / n for n in ("games.npz", "jobs.json", "out.json"))
        np.savez(games_file, **arrays)
        jobs_file.write_text(json.dumps(jobs))
        subprocess.run(
            [python, str(Path(__file__).with_name("bench_pydvl.py")), str(games_file), str(jobs_file), str(out_file)],
            check=True,
        )
        out = json.loads(out_file.read_text())
    return {(r["game"], r["estimator"], r["budget"], r["seed"]): (np.array(r["values"]), r["calls"]) for r in out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", default="100,300,1000,3000")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--pydvl-python", help="python of a virtual environment with pydvl==0.10.0 (see bench_pydvl.py)")
    a = ap.parse_args()
    budgets = [int(b) for b in a.budgets.split(",")]
    game_list = list(games(np.random.default_rng(0)))
    plan = [
        (g, est, b)
        for g, _, _, banzhaf in game_list
        for est in ("tmc", "shed_grouped", "banzhaf_msr")
        if est != "banzhaf_msr" or banzhaf is not None
        for b in budgets
    ]
    theirs = {}
    if a.pydvl_python:  # SHED's grouped estimator has no pyDVL counterpart
        jobs = [
            {"game": g, "estimator": est, "budget": b, "seed": s}
            for g, est, b in plan
            if est != "shed_grouped"
            for s in range(a.seeds)
        ]
        theirs = pydvl_results(a.pydvl_python, game_list, jobs)
    by_name = {g: (game, shapley, banzhaf) for g, game, shapley, banzhaf in game_list}
    print(f"{'game':<10} {'estimator':<13} {'impl':<6} {'budget':>7} {'calls':>7} {'rel. error':>10} {'spearman':>8}")
    for g, est, budget in plan:
        game, shapley, banzhaf = by_name[g]
        exact = banzhaf if est == "banzhaf_msr" else shapley
        impls = [("ours", [run_ours(est, game, budget, s) for s in range(a.seeds)])]
        if theirs and est != "shed_grouped":
            impls.append(("pydvl", [theirs[(g, est, budget, s)] for s in range(a.seeds)]))
        for impl, runs in impls:
            err = np.mean([rel_err(v, exact) for v, _ in runs])
            rho = np.mean([spearman(v, exact) for v, _ in runs])
            calls = np.mean([c for _, c in runs])
            print(f"{g:<10} {est:<13} {impl:<6} {budget:>7} {calls:>7.0f} {err:>10.3f} {rho:>8.3f}")


if __name__ == "__main__":
    main()
