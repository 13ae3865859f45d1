"""The utility protocol shared by every estimator, and a counting, memoising wrapper."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Utility(Protocol):
    """U(S) for coalitions of `n_players` players, given as boolean membership masks.

    `value` of the all-False mask must be the utility's real value on the empty set (SHED's code
    used 0 for the base model, which skews the last-removed batch: we never do that).
    """

    n_players: int

    def value(self, members: np.ndarray) -> float: ...


class CountingUtility:
    """Wraps a utility: counts evaluations and reuses values of coalitions already evaluated."""

    def __init__(self, inner: Utility):
        self.inner = inner
        self.n_players = inner.n_players
        self._memo: dict[bytes, float] = {}
        self.evaluations = 0
        self.cache_hits = 0

    def value(self, members: np.ndarray) -> float:
        mask = np.asarray(members, dtype=bool)
        if mask.shape != (self.n_players,):
            raise ValueError(f"coalition mask must have shape ({self.n_players},), got {mask.shape}")
        key = np.packbits(mask).tobytes()
        hit = self._memo.get(key)
        if hit is not None:
            self.cache_hits += 1
            return hit
        self.evaluations += 1
        v = float(self.inner.value(mask))
        self._memo[key] = v
        return v
