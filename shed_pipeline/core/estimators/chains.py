"""TS-DShapley's subset chains (Schoch, Mishra & Ji, 2023): many short Monte Carlo chains, each on a
small random subset of the players, aggregated into values for everyone.

Each round partitions the players into chains of about `chain_size`; within a chain, Monte Carlo
permutations (no truncation) give each member its Shapley value *in that chain's game* (U restricted
to coalitions of chain members). A player's value is the mean over the rounds. A chain's coalitions
are small, so with a fine-tuning utility each evaluation is cheap (few rows to train on), and rounds
are independent (they parallelise). The values estimate a player's average contribution to small
coalitions, which is what separates harmful rows from useful ones.

Chains are drawn by hashing (seed, round, player key): a player stays in its chain when others join or
leave (as long as the number of chains is the same), so a refresh meets the same coalitions again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from shed_pipeline.core.estimators.base import EstimatorResult, _mix64, permutation, player_key_array
from shed_pipeline.core.strategies import Strategy


def default_chain_size(n_players: int) -> int:
    """5% of the players, at least 8 (TS-DShapley used ~2% of thousands of points)."""
    return max(8, math.ceil(0.05 * n_players))


def chain_assignment(n_players: int, n_chains: int, seed: int, round_: int, keys=None) -> np.ndarray:
    """Chain index (0 .. n_chains-1) of each player in one round."""
    k = player_key_array(n_players, keys)
    salt = _mix64(np.array([(int(seed) * 0x100000001B3 + int(round_) + 0x5EED) & ((1 << 64) - 1)], dtype=np.uint64))
    return (_mix64(k ^ salt) % np.uint64(n_chains)).astype(np.int64)


def subset_chains(
    utility, *, chain_size: int | None = None, rounds: int = 10, permutations: int = 20, seed: int = 0, player_keys=None
) -> EstimatorResult:
    k = utility.n_players
    if rounds < 1 or permutations < 1:
        raise ValueError("rounds and permutations must be at least 1")
    size = default_chain_size(k) if chain_size is None else chain_size
    if size < 1:
        raise ValueError(f"chain_size must be at least 1, got {size}")
    keys = player_key_array(k, player_keys)
    n_chains = max(1, round(k / size))
    empty = utility.value(np.zeros(k, dtype=bool))
    per_round = np.zeros((rounds, k))
    sizes = []
    for r in range(rounds):
        chain_of = chain_assignment(k, n_chains, seed, r, keys)
        for c in range(n_chains):
            members = np.flatnonzero(chain_of == c)
            if len(members) == 0:
                continue
            sizes.append(len(members))
            acc = np.zeros(len(members))
            for t in range(permutations):
                # Permutation t of this chain, seeded per round so rounds are independent.
                order = permutation(len(members), seed * 1_000_003 + r, t, keys[members])
                mask = np.zeros(k, dtype=bool)
                prev = empty
                for j in order:
                    mask[members[j]] = True
                    cur = utility.value(mask)
                    acc[j] += cur - prev
                    prev = cur
            per_round[r, members] = acc / permutations
    values = per_round.mean(0)
    stderr = per_round.std(0) / np.sqrt(rounds) if rounds > 1 else None
    return EstimatorResult(
        values=values,
        stderr=stderr,
        info={
            "rounds": rounds,
            "chains": len(sizes),
            "chain_size_mean": float(np.mean(sizes)),
            "chain_size_max": int(max(sizes)),
            "permutations_per_chain": permutations,
        },
    )


@dataclass(frozen=True)
class ChainsSettings:
    permutations: int = field(default=20, metadata={"help": "Monte Carlo permutations per chain"})
    chain_size: Optional[int] = field(default=None, metadata={"help": "players per chain; default 5% of K, at least 8"})
    chain_rounds: int = field(
        default=10, metadata={"help": "partitions into chains; each player is valued in this many chains"}
    )


STRATEGY = Strategy(
    name="ts_chains",
    summary="TS-DShapley's subset chains (Schoch et al. 2023): Monte Carlo on many small random chains of players",
    settings=ChainsSettings,
    run=lambda utility, settings, seed, player_keys=None: subset_chains(
        utility,
        chain_size=settings.chain_size,
        rounds=settings.chain_rounds,
        permutations=settings.permutations,
        seed=seed,
        player_keys=player_keys,
    ),
    calls=lambda k, settings: settings.chain_rounds * settings.permutations * k + 1,
    fixed_coalitions=lambda settings: True,
)
