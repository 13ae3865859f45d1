"""Exact Shapley values by enumerating all 2^n coalitions: the test oracle (n <= 16)."""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult
from shed_pipeline.core.strategies import Strategy

MAX_PLAYERS = 16


def all_values(utility) -> np.ndarray:
    """U of every coalition, indexed by bitmask (bit i set = player i in)."""
    n = utility.n_players
    if n > MAX_PLAYERS:
        raise ValueError(f"exact enumeration needs 2^{n} evaluations; use it for at most {MAX_PLAYERS} players")
    vals = np.empty(1 << n)
    bits = (np.arange(1 << n)[:, None] >> np.arange(n)[None, :]) & 1
    for m in range(1 << n):
        vals[m] = utility.value(bits[m].astype(bool))
    return vals


def exact_shapley(utility) -> EstimatorResult:
    n = utility.n_players
    vals = all_values(utility)
    weight = [factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)]
    phi = np.zeros(n)
    for m in range(1 << n):
        size = bin(m).count("1")
        for i in range(n):
            if not (m >> i) & 1:
                phi[i] += weight[size] * (vals[m | (1 << i)] - vals[m])
    return EstimatorResult(values=phi, info={"coalitions": 1 << n})


def exact_banzhaf(utility) -> EstimatorResult:
    """Banzhaf values by enumeration: phi_i = 2^-(n-1) * sum over S not holding i of U(S+i) - U(S)."""
    n = utility.n_players
    vals = all_values(utility)
    phi = np.zeros(n)
    for i in range(n):
        without = np.array([m for m in range(1 << n) if not (m >> i) & 1])
        phi[i] = (vals[without | (1 << i)] - vals[without]).mean()
    return EstimatorResult(values=phi, info={"coalitions": 1 << n})


@dataclass(frozen=True)
class ExactSettings:
    pass


STRATEGY = Strategy(
    name="exact",
    summary=f"exact Shapley values by enumerating all 2^K coalitions (K <= {MAX_PLAYERS}: a test oracle)",
    settings=ExactSettings,
    run=lambda utility, settings, seed, player_keys=None: exact_shapley(utility),
    calls=lambda k, settings: 2**k,
    fixed_coalitions=lambda settings: True,
)
