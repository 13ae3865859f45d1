"""`knn_shapley`: the exact Shapley value of every pool row under the knn utility (utilities/knn.py),
with all pool rows as players, in closed form (Jia et al., VLDB 2019).

Per validation row, with the players sorted nearest first by prompt-embedding similarity
(alpha_1 .. alpha_N) and m_i the token-F1 match of alpha_i's response to the reference:
    s(alpha_N) = m_N / N,   s(alpha_i) = s(alpha_{i+1}) + (m_i - m_{i+1}) / k * min(k, i) / i
(N < k: every player is always a neighbour, the game is additive, s = m / k); the value is the
mean over validation rows. The recursion gives every player a value, so each validation row needs
a full sort of the players: O(N log N) per validation row. Validation rows are processed in blocks
sized so that a block's arrays stay around `block_elements` entries: memory is bounded whatever N is.
Similarities are computed for SIM_BLOCK_ELEMENTS at a time, so each chunk of player vectors is
converted to float64 once per many validation rows (converting it per handful of rows took most of
the time at a million players).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from shed_pipeline.core.progress import Progress, silent
from shed_pipeline.core.row_values.base import RowValueInputs
from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.text_match import tokens
from shed_pipeline.core.utilities.knn import neighbour_similarity

BLOCK_ELEMENTS = 1 << 22  # entries per (validation rows x players) array of a block: ~32 MB each in float64
SIM_BLOCK_ELEMENTS = (
    1 << 25
)  # similarities computed at once (256 MiB of float64), then sorted a block of rows at a time
PLAYER_CHUNK = 1 << 16  # players per similarity product: the float64 copy of their vectors stays small


@dataclass(frozen=True)
class KNNShapleySettings:
    k: int = field(default=5, metadata={"help": "neighbours of the knn utility (as proxy_shapley_scores' knn utility)"})
    validation_rows: int = field(
        default=1000,
        metadata={
            "help": (
                "validation rows valued against, the first by row id (a fixed sample); 0 = all. Cost grows linearly "
                "with it"
            )
        },
    )


class TokenSets:
    """The responses' word sets as a sparse binary matrix, built once: token F1 against any block of
    references is then one sparse product, with text_match.token_f1's exact arithmetic."""

    def __init__(self, answers: Sequence[str]):
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, text in enumerate(answers):
            for tok in tokens(text):
                rows.append(i)
                cols.append(self.vocab.setdefault(tok, len(self.vocab)))
        self.sizes = np.bincount(np.asarray(rows, dtype=np.int64), minlength=len(answers)).astype(np.float64)
        self.matrix = sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(answers), max(1, len(self.vocab)))
        ).T.tocsr()

    def f1(self, references: Sequence[str]) -> np.ndarray:
        """F1[i, j] = token_f1(answers[j], references[i]), float64 (len(references), len(answers))."""
        rows, cols, sizes = [], [], []
        for i, text in enumerate(references):
            ts = tokens(text)
            sizes.append(len(ts))
            for tok in ts:
                j = self.vocab.get(tok)
                if j is not None:  # a word no answer has adds to the reference's size only
                    rows.append(i)
                    cols.append(j)
        q = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(references), self.matrix.shape[0]))
        overlap = (q @ self.matrix).toarray()
        qsize = np.asarray(sizes, dtype=np.float64)
        denom = qsize[:, None] + self.sizes[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(denom > 0, 2.0 * overlap / denom, 1.0)
        f1[(qsize[:, None] == 0) ^ (self.sizes[None, :] == 0)] = 0.0
        return f1


def similarities(
    query_vectors: np.ndarray, player_vectors: np.ndarray, pool: ThreadPoolExecutor | None = None
) -> np.ndarray:
    """`neighbour_similarity` of every query and player, PLAYER_CHUNK players at a time (on `pool`'s
    threads when given: each chunk's values do not depend on which thread computes it)."""
    sim = np.empty((len(query_vectors), len(player_vectors)))

    def fill(s: int) -> None:
        sim[:, s : s + PLAYER_CHUNK] = neighbour_similarity(query_vectors, player_vectors[s : s + PLAYER_CHUNK])

    starts = range(0, len(player_vectors), PLAYER_CHUNK)
    list(pool.map(fill, starts)) if pool is not None else [fill(s) for s in starts]
    return sim


def order_by_similarity(sim: np.ndarray) -> np.ndarray:
    """Each row's players nearest first, ties to the lower index: exactly a stable argsort of -sim.
    The similarities are rounded to 12 decimals (`neighbour_similarity`), so -sim x 1e12 is an
    integer; packed above the player index into one int64 key, one plain sort of the keys gives the
    order (numpy sorts int64 with SIMD; about 4x a stable argsort of floats). Similarities too large
    to pack, or not finite, take the stable argsort."""
    n = sim.shape[1]
    bits = max(1, (n - 1).bit_length())
    peak = float(np.abs(sim).max()) if sim.size else 0.0
    if not peak * 1e12 < 2.0 ** (62 - bits):
        return np.argsort(-sim, axis=1, kind="stable")
    keys = np.rint(sim * -1e12).astype(np.int64)
    keys *= 1 << bits
    keys += np.arange(n, dtype=np.int64)
    keys.sort(axis=1)
    keys &= (1 << bits) - 1  # the low bits: the player index (two's complement keeps them for negative keys)
    return keys


def neighbour_order(query_vectors: np.ndarray, player_vectors: np.ndarray) -> np.ndarray:
    """Players nearest first for each query, as KNNUtility orders them (`neighbour_similarity`, ties
    to the lower index)."""
    return order_by_similarity(similarities(query_vectors, player_vectors))


def sorted_shapley(m: np.ndarray, k: int) -> np.ndarray:
    """Each validation row's Shapley values of its players in nearest-first order (rows of `m`:
    matches nearest first), by the closed-form recursion."""
    n = m.shape[1]
    if n < k:
        return m / k
    i = np.arange(1, n)
    coef = np.minimum(k, i) / i / k  # weight of (m_i - m_{i+1})
    tail = np.cumsum(((m[:, :-1] - m[:, 1:]) * coef[None, :])[:, ::-1], axis=1)[:, ::-1]
    s_last = m[:, -1:] / n
    return np.concatenate([s_last + tail, s_last], axis=1)


def knn_shapley_values(
    player_vectors: np.ndarray,
    player_outputs: Sequence[str],
    query_vectors: np.ndarray,
    query_references: Sequence[str],
    *,
    k: int = 5,
    block_elements: int | None = None,
    log=silent,
    threads: int | None = None,
) -> np.ndarray:
    """Exact Shapley values (float64, one per player) of the knn utility with every player in the
    game, averaged over the query (validation) rows. `block_elements`: entries per block array
    (default BLOCK_ELEMENTS); `threads`: blocks computed at once (default: the CPU count, at most 8)."""
    if k < 1:
        raise ValueError(f"knn_shapley: k must be at least 1, got {k}")
    n, v = len(player_outputs), len(query_references)
    if len(player_vectors) != n or len(query_vectors) != v:
        raise ValueError("knn_shapley: vectors and texts differ in length")
    if v == 0:
        raise ValueError("knn_shapley needs at least one validation row: raise validation_fraction or add rows")
    total = np.zeros(n)
    if n == 0:
        return total
    answers = TokenSets(player_outputs)
    block = max(1, (block_elements or BLOCK_ELEMENTS) // n)
    # Validation rows whose similarities are computed together: a whole number of blocks.
    sim_rows = block * max(1, SIM_BLOCK_ELEMENTS // (block * n))
    workers = max(1, min(threads if threads is not None else (os.cpu_count() or 1), 8))
    progress = Progress(v, "knn_shapley", log, unit="validation rows")

    def block_values(sim: np.ndarray, first: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        order = order_by_similarity(sim[t : t + block])
        match = np.take_along_axis(answers.f1(query_references[first + t : first + t + block]), order, axis=1)
        return order, sorted_shapley(match, k)

    # The similarities of a group of validation rows, then their blocks, on several threads (the
    # products and sorts run without the GIL); the blocks are summed here in row order: the same
    # sum, in the same order, as one thread and any block size give.
    with ThreadPoolExecutor(workers) as pool:
        for first in range(0, v, sim_rows):
            sim = similarities(query_vectors[first : first + sim_rows], player_vectors, pool)
            pending = deque()
            starts = iter(range(0, len(sim), block))
            for t in itertools.islice(starts, workers + 1):  # at most workers + 1 blocks in memory
                pending.append(pool.submit(block_values, sim, first, t))
            while pending:
                order, values = pending.popleft().result()
                nxt = next(starts, None)
                if nxt is not None:
                    pending.append(pool.submit(block_values, sim, first, nxt))
                for r in range(len(order)):  # row by row: the same sum, in the same order, as a mean over all rows
                    total[order[r]] += values[r]
                progress.advance(len(order))
            del sim
    return total / v


def run(settings: KNNShapleySettings, inputs: RowValueInputs) -> np.ndarray:
    val = (
        inputs.validation.sort("row_id").head(settings.validation_rows)
        if settings.validation_rows
        else inputs.validation
    )
    return knn_shapley_values(
        np.asarray(inputs.pool["embedding"].to_numpy(), dtype=np.float32),
        inputs.pool["output"].to_list(),
        np.asarray(val["embedding"].to_numpy(), dtype=np.float32),
        val["output"].to_list(),
        k=settings.k,
        log=inputs.log,
    )


STRATEGY = Strategy(
    "knn_shapley",
    "exact KNN-Shapley of every pool row under the knn utility (prompt-embedding neighbours, token-F1 answers), O(N "
    "log N) per validation row",
    KNNShapleySettings,
    run,
    requires={"columns": ("output",)},  # of the texts, only the responses: a million prompts are not joined
)
