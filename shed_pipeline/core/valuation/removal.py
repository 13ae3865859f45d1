"""TS-DShapley's removal-index rule: how many of the lowest-valued players to drop.

Rank the players by value (lowest first), evaluate the utility of the set left after removing the r
lowest for r on a grid, and keep the r with the highest utility (ties: the smallest r, i.e. drop as
little as possible). `curated_subset` with `auto_size` (`--size auto`) keeps exactly the clusters
that survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RemovalCurve:
    removed: list[int]  # r values evaluated
    utility: list[float]  # U(all players but the r lowest)
    best: int  # the chosen r
    dropped: np.ndarray = field(repr=False)  # (n_players,) bool: among the `best` lowest


def removal_order(values, keys=None) -> np.ndarray:
    """Players from lowest to highest value; ties by key (default: position)."""
    v = np.asarray(values, dtype=np.float64)
    k = np.arange(len(v)) if keys is None else np.asarray(keys)
    return np.lexsort((k, v))


def removal_curve(utility, values, keys=None, max_fraction: float = 0.5, points: int = 21) -> RemovalCurve:
    n = utility.n_players
    if len(values) != n:
        raise ValueError(f"{len(values)} values for {n} players")
    if not 0 <= max_fraction < 1:
        raise ValueError(f"max_fraction must be in [0, 1), got {max_fraction}")
    if points < 2:
        raise ValueError("the removal curve needs at least two points")
    order = removal_order(values, keys)
    top = max(0, min(n - 1, int(np.floor(max_fraction * n))))  # never remove everyone (one player: r = 0 only)
    grid = sorted({int(round(x)) for x in np.linspace(0, top, points)})
    utils = []
    for r in grid:
        mask = np.ones(n, dtype=bool)
        mask[order[:r]] = False
        utils.append(float(utility.value(mask)))
    best = grid[int(np.argmax(utils))]  # argmax takes the first maximum: the smallest r
    dropped = np.zeros(n, dtype=bool)
    dropped[order[:best]] = True
    return RemovalCurve(grid, utils, best, dropped)
