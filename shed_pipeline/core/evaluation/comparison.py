"""Each evaluation arm against the random arms, paired over the same test rows and items.

For every arm that is not random (curated, each baseline, the full pool, the base model) and every
benchmark (the test split; each multiple-choice task; `benchmarks_mean`, their mean):

- difference: the arm's mean minus the random arms' mean (the mean over seeds of each seed's mean);
- z: difference / the sample standard deviation of the random arms' means across seeds (how many
  seed-to-seed spreads the arm is away; None with fewer than two seeds or no spread);
- a 95% paired bootstrap interval of the difference: items (test rows) resampled with replacement,
  B times, each time the mean over them of (the arm's score - the mean of the random arms' scores on
  the same item); the 2.5th and 97.5th percentiles. Seeded; every arm of a benchmark is resampled
  with the same draws.

`benchmarks_mean` is the mean over the multiple-choice tasks of the per-task values (each task
weighs the same, whatever its item count); its interval resamples each task's items separately
and averages the tasks' bootstrap means (a stratified bootstrap). The test split is left out of it:
its metric (log-likelihood per token) is on another scale than accuracy.

Test split scores: each row's mean per-token log-likelihood; tasks: each item's correctness (0/1).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import polars as pl

BENCHMARKS_MEAN = "benchmarks_mean"
TEST_SPLIT = "test_split"
LEVEL = 0.95


def compare(records: Sequence[dict], bootstrap: int = 2000, seed: int = 0, level: float = LEVEL) -> list[dict]:
    """Comparison rows (arm, benchmark, metric, arm_mean, random_mean, random_std, difference,
    ci_low, ci_high, z, n, seeds) from evaluation records with per-item `scores` (lm_arms).
    Arms in first-seen order; per arm its benchmarks, then `benchmarks_mean` when there are
    multiple-choice tasks. Empty without random arms."""
    if bootstrap < 1:
        raise ValueError(f"bootstrap resamples must be >= 1, got {bootstrap}")
    scores, random, metric = _by_arm(records)
    if not random:
        return []
    benches = [b for b in metric if b in random]
    for b in benches:
        if len({len(s) for s in random[b]}) != 1:
            raise ValueError(
                f"the random arms scored different numbers of items on {b}: they must share the same items"
            )
    rand_items = {b: np.mean(random[b], axis=0) for b in benches}  # per item: mean over seeds
    rand_means = {b: np.array([s.mean() for s in random[b]]) for b in benches}  # per seed
    draws = {b: _draws(len(rand_items[b]), bootstrap, seed, b) for b in benches}
    choice = [b for b in benches if metric[b] == "accuracy"]
    out = []
    for arm in dict.fromkeys(a for a, _ in scores):
        boots = {}
        for b in benches:
            s = scores.get((arm, b))
            if s is None:
                continue
            if len(s) != len(rand_items[b]):
                raise ValueError(
                    f"arm {arm} scored {len(s)} items on {b}, the random arms {len(rand_items[b])}: "
                    "arms must share the same items"
                )
            d = s - rand_items[b]
            boots[b] = d[draws[b]].mean(axis=1) if len(d) else np.full(bootstrap, np.nan)
            out.append(
                _row(
                    arm,
                    b,
                    metric[b],
                    arm_mean=float(s.mean()),
                    seed_means=rand_means[b],
                    boot=boots[b],
                    n=len(s),
                    level=level,
                )
            )
        if choice and all(b in boots for b in choice):
            arm_mean = float(np.mean([scores[(arm, b)].mean() for b in choice]))
            seed_means = np.mean([rand_means[b] for b in choice], axis=0)
            out.append(
                _row(
                    arm,
                    BENCHMARKS_MEAN,
                    "accuracy",
                    arm_mean=arm_mean,
                    seed_means=seed_means,
                    boot=np.mean([boots[b] for b in choice], axis=0),
                    n=sum(len(rand_items[b]) for b in choice),
                    level=level,
                )
            )
    return out


def head_to_head(
    records: Sequence[dict], arm: str, other: str, *, bootstrap: int = 2000, seed: int = 0, level: float = LEVEL
) -> list[dict]:
    """`arm` against `other` (two non-random arms, e.g. the best SHED method and the strongest
    baseline), paired over the same items: per benchmark, and `benchmarks_mean` over the
    multiple-choice tasks, the difference of their means with a 95% paired bootstrap interval
    (the same draws as `compare`), and z against the random arms' seed-to-seed spread when there
    are random arms (None otherwise)."""
    if bootstrap < 1:
        raise ValueError(f"bootstrap resamples must be >= 1, got {bootstrap}")
    scores, random_scores, metric = _by_arm(records)
    random = {b: [float(s.mean()) if len(s) else np.nan for s in seeds] for b, seeds in random_scores.items()}
    for name in (arm, other):
        if not any(a == name for a, _ in scores):
            raise ValueError(f"no arm {name!r} in the records; arms: {', '.join(dict.fromkeys(a for a, _ in scores))}")
    out, boots, spreads = [], {}, {}
    for b in metric:
        if (arm, b) not in scores or (other, b) not in scores:
            continue
        x, y = scores[(arm, b)], scores[(other, b)]
        if len(x) != len(y):
            raise ValueError(f"{arm} scored {len(x)} items on {b}, {other} {len(y)}: arms must share the same items")
        d = x - y
        boots[b] = d[_draws(len(d), bootstrap, seed, b)].mean(axis=1) if len(d) else np.full(bootstrap, np.nan)
        spreads[b] = np.asarray(random.get(b, []))
        out.append(
            _pair_row(
                arm,
                other,
                b,
                metric[b],
                x_mean=float(x.mean()),
                y_mean=float(y.mean()),
                boot=boots[b],
                random_seed_means=spreads[b],
                n=len(d),
                level=level,
            )
        )
    choice = [b for b in boots if metric[b] == "accuracy"]
    if choice:
        seed_means = (
            np.mean([spreads[b] for b in choice], axis=0)
            if all(len(spreads[b]) == len(spreads[choice[0]]) for b in choice)
            else np.array([])
        )
        x_mean = float(np.mean([scores[(arm, b)].mean() for b in choice]))
        y_mean = float(np.mean([scores[(other, b)].mean() for b in choice]))
        out.append(
            _pair_row(
                arm,
                other,
                BENCHMARKS_MEAN,
                "accuracy",
                x_mean=x_mean,
                y_mean=y_mean,
                boot=np.mean([boots[b] for b in choice], axis=0),
                random_seed_means=np.atleast_1d(seed_means),
                n=sum(len(scores[(arm, b)]) for b in choice),
                level=level,
            )
        )
    return out


def _pair_row(
    arm: str,
    other: str,
    benchmark: str,
    metric: str,
    *,
    x_mean: float,
    y_mean: float,
    boot: np.ndarray,
    random_seed_means: np.ndarray,
    n: int,
    level: float,
) -> dict:
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if np.isfinite(boot).all() else (np.nan, np.nan)
    spread = float(np.std(random_seed_means, ddof=1)) if len(random_seed_means) > 1 else None
    diff = x_mean - y_mean
    return {
        "arm": arm,
        "other": other,
        "benchmark": benchmark,
        "metric": metric,
        "arm_mean": x_mean,
        "other_mean": y_mean,
        "difference": diff,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "random_std": spread,
        "z": diff / spread if spread else None,
        "n": int(n),
    }


def _by_arm(
    records: Sequence[dict],
) -> tuple[dict[tuple[str, str], np.ndarray], dict[str, list[np.ndarray]], dict[str, str]]:
    """(per (arm, benchmark) its item scores, per benchmark the random arms' item scores in seed
    order, per benchmark its metric) of evaluation records."""
    scores: dict[tuple[str, str], np.ndarray] = {}
    random: dict[str, list[np.ndarray]] = {}
    metric: dict[str, str] = {}
    for r in records:
        metric[r["benchmark"]] = r["metric"]
        s = np.asarray(r["scores"], dtype=np.float64)
        if r["arm"] == "random":
            random.setdefault(r["benchmark"], []).append(s)
        else:
            scores[(r["arm"], r["benchmark"])] = s
    return scores, random, metric


def _draws(n: int, bootstrap: int, seed: int, benchmark: str) -> np.ndarray:
    """(bootstrap, n) item indices drawn with replacement; the same for every arm of a benchmark."""
    rng = np.random.default_rng([seed, zlib.crc32(benchmark.encode())])
    return rng.integers(0, n, size=(bootstrap, n)) if n else np.zeros((bootstrap, 0), dtype=np.int64)


def _row(
    arm: str,
    benchmark: str,
    metric: str,
    *,
    arm_mean: float,
    seed_means: np.ndarray,
    boot: np.ndarray,
    n: int,
    level: float,
) -> dict:
    random_mean = float(np.mean(seed_means))
    random_std = float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None
    diff = arm_mean - random_mean
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if np.isfinite(boot).all() else (np.nan, np.nan)
    z = diff / random_std if random_std else None
    return {
        "arm": arm,
        "benchmark": benchmark,
        "metric": metric,
        "arm_mean": arm_mean,
        "random_mean": random_mean,
        "random_std": random_std,
        "difference": diff,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "z": z,
        "n": int(n),
        "seeds": int(len(seed_means)),
    }


# The `evaluation_comparisons` lineage table's columns and their types.
LINEAGE_SCHEMA = {
    "arm": pl.Utf8,
    "benchmark": pl.Utf8,
    "metric": pl.Utf8,
    "arm_mean": pl.Float64,
    "random_mean": pl.Float64,
    "random_std": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "z": pl.Float64,
    "n": pl.Int64,
}


def lineage_rows(rows: Sequence[dict]) -> list[dict]:
    """The `evaluation_comparisons` lineage columns of comparison rows."""
    return [{c: r[c] for c in LINEAGE_SCHEMA} for r in rows]
