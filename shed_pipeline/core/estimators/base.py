"""What every estimator shares: the result type and seeded, stable permutations. The estimators
themselves, and their registry, are in the other modules of this package (see __init__)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class EstimatorResult:
    values: np.ndarray  # (n_players,)
    stderr: np.ndarray | None = None  # per-player standard error of a sampling estimate
    info: dict[str, Any] = field(default_factory=dict)


_M64 = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective 64-bit mix (uint64 arrays wrap silently)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def player_key_array(n: int, keys: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Each player's stable key (its cluster id; by default its position) as uint64, for hashing."""
    k = np.arange(n, dtype=np.uint64) if keys is None else np.asarray(keys, dtype=np.int64).astype(np.uint64)
    if len(k) != n:
        raise ValueError(f"{len(k)} player keys for {n} players")
    return k


def permutation(n: int, seed: int, t: int, keys: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """The t-th permutation of a run: player positions sorted by a hash of (seed, t, player key).

    It depends only on (seed, t) and the players' keys (their stable cluster ids), so permutation t
    recurs whatever T is, and adding or retiring a player leaves the others in the same relative
    order: a refresh meets the same coalitions again, and the utility cache answers them.
    """
    k = player_key_array(n, keys)
    base = _mix64(np.array([(int(seed) & _M64)], dtype=np.uint64))
    base = _mix64(base ^ np.array([int(t) & _M64], dtype=np.uint64))
    h = _mix64(k ^ base)
    return np.lexsort((k, h))  # ties (never seen in practice) by key


class MarginalStats:
    """Running mean and standard error of per-permutation marginal contributions."""

    def __init__(self, n_players: int):
        self.total = np.zeros(n_players)
        self.total_sq = np.zeros(n_players)
        self.count = 0

    def add(self, marginals: np.ndarray) -> None:
        self.total += marginals
        self.total_sq += marginals**2
        self.count += 1

    def result(self, info: dict[str, Any]) -> EstimatorResult:
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean**2, 0.0)
        stderr = np.sqrt(var / self.count) if self.count > 1 else None
        return EstimatorResult(values=mean, stderr=stderr, info=info)
