"""Data Banzhaf with maximum sample reuse (Wang & Jia, AISTATS 2023).

Each sample is a coalition in which every player takes part with probability 1/2, and every
evaluated coalition updates every player:

    phi_i = mean of U(S) over samples holding i  -  mean of U(S) over samples without i

which is an unbiased estimate of the Banzhaf value. Robust to a noisy utility (a fine-tuned model's
score), since no single evaluation carries a player's value. Membership of a player in sample t is
a hash of (seed, t, player key), independent of the other players: when players join or leave, the
others' memberships stay the same, so a refresh asks for coalitions the utility cache has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shed_pipeline.core.estimators.base import _M64, EstimatorResult, _mix64, player_key_array
from shed_pipeline.core.strategies import Strategy


def sample_masks(n: int, samples: int, seed: int, keys=None) -> np.ndarray:
    """(samples, n) membership: player j is in sample t iff a hash of (seed, t, key_j) is odd."""
    k = player_key_array(n, keys)
    base = _mix64(np.array([int(seed) & _M64], dtype=np.uint64))
    t = _mix64(base ^ np.arange(samples, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03))
    return ((_mix64(t[:, None] ^ _mix64(k[None, :])) >> np.uint64(17)) & np.uint64(1)).astype(bool)


def banzhaf_msr(utility, samples: int, seed: int, player_keys=None) -> EstimatorResult:
    n = utility.n_players
    if samples < 2:
        raise ValueError("samples must be at least 2")
    masks = sample_masks(n, samples, seed, player_keys)
    values = np.array([utility.value(m) for m in masks])
    n_in = masks.sum(0)
    n_out = samples - n_in
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = (masks * values[:, None]).sum(0) / n_in
        mean_out = (~masks * values[:, None]).sum(0) / n_out
        sq_in = (masks * values[:, None] ** 2).sum(0) / n_in - mean_in**2
        sq_out = (~masks * values[:, None] ** 2).sum(0) / n_out - mean_out**2
        stderr = np.sqrt(
            np.maximum(sq_in, 0) / np.maximum(n_in - 1, 1) + np.maximum(sq_out, 0) / np.maximum(n_out - 1, 1)
        )
    missing = (n_in == 0) | (n_out == 0)  # never (or always) sampled: no estimate
    phi = np.where(missing, 0.0, mean_in - mean_out)
    stderr = np.where(missing, np.inf, stderr)
    return EstimatorResult(
        values=phi, stderr=stderr, info={"samples": samples, "players_without_estimate": int(missing.sum())}
    )


@dataclass(frozen=True)
class BanzhafSettings:
    samples: int = field(default=1000, metadata={"help": "random coalitions, each updating every player"})


STRATEGY = Strategy(
    name="banzhaf_msr",
    summary="Data Banzhaf with maximum sample reuse (Wang & Jia 2023): robust to a noisy utility",
    settings=BanzhafSettings,
    run=lambda utility, settings, seed, player_keys=None: banzhaf_msr(
        utility, samples=settings.samples, seed=seed, player_keys=player_keys
    ),
    calls=lambda k, settings: settings.samples,
    fixed_coalitions=lambda settings: True,
)
