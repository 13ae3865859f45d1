"""pyDVL's TMC-Shapley and MSR-Banzhaf on the games of bench/estimators.py (a bench-only reference).

pyDVL 0.10 pins numpy < 2, so it lives in its own virtual environment and this script runs there,
imports only numpy and pyDVL, and talks to estimators.py through files:

    python3 -m venv /tmp/pydvl-venv && /tmp/pydvl-venv/bin/pip install pydvl==0.10.0
    python bench/estimators.py --pydvl-python /tmp/pydvl-venv/bin/python

Input: an .npz of games (see estimators.py `save_games`); output: JSON with, per (game, estimator,
budget, seed), the values and the number of utility calls pyDVL made.
"""

import json
import sys
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)  # pyDeprecate notices on import

import numpy as np  # noqa: E402
from joblib import parallel_config  # noqa: E402
from pydvl.valuation.dataset import Dataset  # noqa: E402
from pydvl.valuation.methods import BanzhafValuation, ShapleyValuation  # noqa: E402
from pydvl.valuation.samplers import MSRSampler, PermutationSampler  # noqa: E402
from pydvl.valuation.samplers.truncation import NoTruncation  # noqa: E402
from pydvl.valuation.stopping import MaxSamples  # noqa: E402
from pydvl.valuation.utility.base import UtilityBase  # noqa: E402


def table_value(vals):
    n = int(np.log2(len(vals)))
    w = 1 << np.arange(n)
    return n, lambda mask: float(vals[int(mask @ w)])


def knn_value(order, match, k):
    """The kNN game of shed_pipeline.core.utilities.knn, restated with numpy only."""
    match_sorted = np.take_along_axis(match, order, axis=1)

    def value(mask):
        in_s = mask[order]
        taken = in_s & (np.cumsum(in_s, axis=1) <= k)
        return float((match_sorted * taken).sum(1).mean() / k)

    return match.shape[1], value


class MaskUtility(UtilityBase):
    """pyDVL passes a Sample (`.subset`: player indices) or None (the empty coalition). The call
    counter is a list because pyDVL shallow-copies the utility inside fit()."""

    def __init__(self, fn, n):
        self.fn, self.n, self.calls = fn, n, [0]

    def __call__(self, sample):
        self.calls[0] += 1
        mask = np.zeros(self.n, dtype=bool)
        if sample is not None and len(sample.subset):
            mask[np.asarray(sample.subset, dtype=int)] = True
        return self.fn(mask)


def run(fn, n, estimator, budget, seed):
    u = MaskUtility(fn, n)
    if estimator == "tmc":
        sampler = PermutationSampler(truncation=NoTruncation(), seed=seed)
        # Each permutation costs U(empty) plus one call per prefix.
        val = ShapleyValuation(u, sampler, MaxSamples(sampler, max(1, budget // (n + 1))), progress=False)
    else:
        sampler = MSRSampler(seed=seed)
        val = BanzhafValuation(u, sampler, MaxSamples(sampler, budget), progress=False)
    with parallel_config(n_jobs=1):
        val.fit(Dataset(np.arange(n, dtype=float).reshape(-1, 1), np.zeros(n)))
    v = np.full(n, np.nan)
    v[np.asarray(val.result.indices, dtype=int)] = val.result.values
    return np.nan_to_num(v).tolist(), u.calls[0]


def main() -> None:
    games_file, jobs_file, out_file = sys.argv[1:4]
    data = np.load(games_file)
    jobs = json.loads(open(jobs_file).read())
    out = []
    for job in jobs:
        g = job["game"]
        if f"{g}.vals" in data:
            n, fn = table_value(data[f"{g}.vals"])
        else:
            n, fn = knn_value(data[f"{g}.order"], data[f"{g}.match"], int(data[f"{g}.k"]))
        values, calls = run(fn, n, job["estimator"], job["budget"], job["seed"])
        out.append({**job, "values": values, "calls": calls})
    with open(out_file, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
