"""`knn_shapley`: the exact Shapley value of every pool row under the knn utility (utilities/knn.py),
with all pool rows as players, in closed form (Jia et al., VLDB 2019).

Per validation row, with the players sorted nearest first by prompt-embedding similarity
(alpha_1 .. alpha_N) and m_i the token-F1 match of alpha_i's response to the reference:
    s(alpha_N) = m_N / N,   s(alpha_i) = s(alpha_{i+1}) + (m_i - m_{i+1}) / k * min(k, i) / i
(N < k: every player is always a neighbour, the game is additive, s = m / k); the value is the
mean over validation rows. The recursion gives every player a value, so each validation row needs
a full sort of the players: O(N log N) per validation row. Validation rows are processed in blocks
sized so that a block's arrays stay around `block_elements` entries: memory is bounded whatever N is.
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
PLAYER_CHUNK = 1 << 16  # players per similarity product: the float64 copy of their vectors stays small


@dataclass(frozen=True)
class KNNShapleySettings:
    k: int = field(default=5, metadata={"help": "neighbours of the knn utility (as proxy_shapley_scores' knn utility)"})
    validation_rows: int = field(default=1000, metadata={"help": "validation rows valued against, the first by row id (a fixed sample); 0 = all. Cost grows linearly with it"})


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
        self.matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(answers), max(1, len(self.vocab)))).T.tocsr()

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


def neighbour_order(query_vectors: np.ndarray, player_vectors: np.ndarray) -> np.ndarray:
    """Players nearest first for each query, as KNNUtility orders them (`neighbour_similarity`), the
    similarity computed PLAYER_CHUNK players at a time."""
    sim = np.empty((len(query_vectors), len(player_vectors)))
    for s in range(0, len(player_vectors), PLAYER_CHUNK):
        sim[:, s : s + PLAYER_CHUNK] = neighbour_similarity(query_vectors, player_vectors[s : s + PLAYER_CHUNK])
    return np.argsort(-sim, axis=1, kind="stable")


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
    progress = Progress(v, "knn_shapley", log, unit="validation rows")

    def block_values(s: int) -> tuple[np.ndarray, np.ndarray]:
        order = neighbour_order(query_vectors[s : s + block], player_vectors)
        match = np.take_along_axis(answers.f1(query_references[s : s + block]), order, axis=1)
        return order, sorted_shapley(match, k)

    # Blocks are computed on several threads (the sort, most of the cost, runs without the GIL) and
    # summed here in block order: the same sum, in the same order, as one thread gives.
    workers = max(1, min(threads if threads is not None else (os.cpu_count() or 1), 8))
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        starts = iter(range(0, v, block))
        for s in itertools.islice(starts, workers + 1):  # at most workers + 1 blocks in memory
            pending.append(pool.submit(block_values, s))
        while pending:
            order, values = pending.popleft().result()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(pool.submit(block_values, nxt))
            for r in range(len(order)):  # row by row: the same sum, in the same order, as a mean over all rows
                total[order[r]] += values[r]
            progress.advance(len(order))
    return total / v


def run(settings: KNNShapleySettings, inputs: RowValueInputs) -> np.ndarray:
    val = inputs.validation.sort("row_id").head(settings.validation_rows) if settings.validation_rows else inputs.validation
    return knn_shapley_values(
        np.asarray(inputs.pool["embedding"].to_numpy(), dtype=np.float32), inputs.pool["output"].to_list(),
        np.asarray(val["embedding"].to_numpy(), dtype=np.float32), val["output"].to_list(), k=settings.k, log=inputs.log,
    )


STRATEGY = Strategy("knn_shapley", "exact KNN-Shapley of every pool row under the knn utility (prompt-embedding neighbours, token-F1 answers), O(N log N) per validation row", KNNShapleySettings, run)
