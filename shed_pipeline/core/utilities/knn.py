"""The `knn` utility: a k-nearest-neighbour surrogate for "fine-tune on S, score on validation".

For each validation row, its k nearest players (cosine similarity of prompt embeddings) answer it
with their outputs; the match of each answer to the reference output is its token-set F1. So

    U(S) = mean over validation rows v of (1/k) * sum of match(v, j) over the min(k, |S|) nearest j in S

and U(empty) = 0 (no training rows, no answer). The closed-form Shapley values of this game are in
`estimators.knn_exact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.text_match import set_f1, token_f1_matrix, tokens
from shed_pipeline.core.utilities.cache import fingerprint_arrays, utility_key
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs, vector_identities, vectors


def check_knn_inputs(
    player_vectors, player_outputs: Sequence[str], query_vectors, query_references: Sequence[str], k: int
) -> None:
    """The knn game's inputs make sense: k >= 1, texts aligned with vectors, a validation row."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(player_outputs) != len(player_vectors) or len(query_references) != len(query_vectors):
        raise ValueError("vectors and texts differ in length")
    if len(query_vectors) == 0:
        raise ValueError("the kNN utility needs at least one validation row")


def neighbour_similarity(query_vectors: np.ndarray, player_vectors: np.ndarray) -> np.ndarray:
    """(queries, players) similarity that orders the knn game's neighbours: dot products in float64
    rounded to 12 decimals, so that the last bits of a matrix product (which depend on its shape,
    i.e. on the other players and the block sizes) cannot reorder two neighbours. Nearest first, ties
    to the lower player index (a stable sort), which keeps their order when players join or leave."""
    return np.round(np.asarray(query_vectors, dtype=np.float64) @ np.asarray(player_vectors, dtype=np.float64).T, 12)


# Blocks of the similarity matrix computed at once: 1,024 test rows x 16,384 training rows of
# float64 (128 MiB), whatever the pool's size.
TEST_BLOCK, TRAIN_BLOCK = 1024, 16384


def _block_candidates(sim: np.ndarray, m: int) -> np.ndarray:
    """Positions, in increasing order, of each row's entries at or above its m-th largest (ties
    included), padded with smaller entries to a common width: the m nearest are among them. A
    partition and a radix sort of a boolean mask, about 7x faster than sorting the block."""
    b = sim.shape[1]
    if b <= m:
        return np.broadcast_to(np.arange(b), sim.shape).copy()
    kth = np.partition(sim, b - m, axis=1)[:, b - m]
    mask = sim >= kth[:, None]
    width = int(mask.sum(1).max())
    return np.argsort(~mask, axis=1, kind="stable")[:, :width]


def nearest_rows(
    train_vectors: np.ndarray,
    test_vectors: np.ndarray,
    k: int,
    test_block: int | None = None,
    train_block: int | None = None,
) -> np.ndarray:
    """(test rows, min(k, training rows)) positions of each test row's nearest training rows, nearest
    first, in memory bounded by the blocks (default TEST_BLOCK x TRAIN_BLOCK): the order of the knn
    utility (cosine of the vectors as given, rounded to 12 decimals; ties go to the lower position)."""
    test_block, train_block = test_block or TEST_BLOCK, train_block or TRAIN_BLOCK
    n, m = len(train_vectors), min(k, len(train_vectors))
    out = np.zeros((len(test_vectors), m), dtype=np.int64)
    for r0 in range(0, len(test_vectors), test_block):
        q = test_vectors[r0 : r0 + test_block]
        best_sim, best_idx = np.empty((len(q), 0)), np.empty((len(q), 0), dtype=np.int64)
        for c0 in range(0, n, train_block):
            sim = neighbour_similarity(q, train_vectors[c0 : c0 + train_block])
            top = _block_candidates(sim, m)
            # Earlier blocks hold lower positions and come first: a stable sort keeps ties' order.
            cand_sim = np.concatenate([best_sim, np.take_along_axis(sim, top, axis=1)], axis=1)
            cand_idx = np.concatenate([best_idx, top + c0], axis=1)
            keep = np.argsort(-cand_sim, axis=1, kind="stable")[:, :m]
            best_sim, best_idx = np.take_along_axis(cand_sim, keep, axis=1), np.take_along_axis(cand_idx, keep, axis=1)
        out[r0 : r0 + len(q)] = best_idx
    return out


def heldout_utility(
    train_vectors: np.ndarray,
    train_outputs: Sequence[str],
    test_vectors: np.ndarray,
    test_references: Sequence[str],
    k: int,
) -> float:
    """The kNN utility of a training set on the given query rows (the validation rows of valuation, or
    the test split of the evaluation): the value of `KNNUtility` with every training row in, bit for
    bit, computed from each query row's k nearest rows only (no query x training matrix is kept, so
    a pool of a million rows fits)."""
    if len(train_outputs) == 0:
        return 0.0
    check_knn_inputs(train_vectors, train_outputs, test_vectors, test_references, k)
    nearest = nearest_rows(train_vectors, test_vectors, k)
    ref_tokens = [tokens(t) for t in test_references]
    out_tokens: dict[int, set[str]] = {}
    picked = np.zeros((len(test_references), k))
    for i, row in enumerate(nearest):
        for rank, j in enumerate(row):
            j = int(j)
            if j not in out_tokens:
                out_tokens[j] = tokens(train_outputs[j])
            picked[i, rank] = set_f1(ref_tokens[i], out_tokens[j])
    return float(picked.sum(1).mean() / k)


# Games larger than this (validation rows x players) are never held as dense matrices: a value is
# computed from the coalition's members with `heldout_utility` (the same bits, bounded memory). Below
# it the dense matrices make many coalitions cheap (the sampling estimators).
DENSE_MAX_ELEMENTS = 1 << 24


class KNNUtility:
    def __init__(
        self,
        player_vectors: np.ndarray,
        player_outputs: Sequence[str],
        query_vectors: np.ndarray,
        query_references: Sequence[str],
        k: int = 5,
    ):
        check_knn_inputs(player_vectors, player_outputs, query_vectors, query_references, k)
        self.k = int(k)
        self.n_players = len(player_vectors)
        # The game's inputs: the dense (validation rows x players) matrices below are built on first
        # use, so knn_exact (which works from the inputs in bounded blocks) never builds them.
        self.inputs: tuple | None = (player_vectors, list(player_outputs), query_vectors, list(query_references))
        self._order: np.ndarray | None = None
        self._match: np.ndarray | None = None
        self._match_sorted: np.ndarray | None = None

    def _build(self) -> None:
        player_vectors, player_outputs, query_vectors, query_references = self.inputs
        self._order = np.argsort(-neighbour_similarity(query_vectors, player_vectors), axis=1, kind="stable")
        self._match = token_f1_matrix(query_references, player_outputs)  # (V, K)
        self._match_sorted = np.take_along_axis(self._match, self._order, axis=1)

    @property
    def dense_built(self) -> bool:
        """Whether the dense (validation rows x players) matrices have been built (`order`, `match`)."""
        return self._order is not None or self._match is not None

    @property
    def order(self) -> np.ndarray:
        """(V, K) players nearest first for each validation row."""
        if self._order is None:
            self._build()
        return self._order

    @property
    def match(self) -> np.ndarray:
        """(V, K) token F1 of each player's output to each validation row's reference."""
        if self._match is None:
            self._build()
        return self._match

    @property
    def match_sorted(self) -> np.ndarray:
        """`match` with each row in nearest-first order."""
        if self._match_sorted is None:
            self._build()
        return self._match_sorted

    @classmethod
    def from_matrices(cls, order: np.ndarray, match: np.ndarray, k: int) -> "KNNUtility":
        """Build from a precomputed neighbour order and match matrix (tests, synthetic games)."""
        self = cls.__new__(cls)
        self.k = int(k)
        self.inputs = None
        self._order = np.asarray(order)
        self._match = np.asarray(match, dtype=np.float64)
        self.n_players = self._match.shape[1]
        self._match_sorted = np.take_along_axis(self._match, self._order, axis=1)
        return self

    def value(self, members: np.ndarray) -> float:
        """U(S), computed from S's members only: the same bits whatever other players exist, so a
        value cached in one run equals the value a later run with more or fewer players computes."""
        mask = np.asarray(members, dtype=bool)
        if self._order is None and len(self.inputs[3]) * self.n_players > DENSE_MAX_ELEMENTS:
            player_vectors, player_outputs, query_vectors, query_references = self.inputs
            idx = np.flatnonzero(mask)
            return heldout_utility(
                np.asarray(player_vectors)[idx],
                [player_outputs[i] for i in idx],
                query_vectors,
                query_references,
                self.k,
            )
        n_rows, n_cols = self.order.shape
        # The (at most k) matches each validation row takes, left-aligned in nearest-first order, then
        # summed: a sum over all K columns would depend, in its last bits, on where S's members sit
        # among the players. Columns are scanned in growing blocks and a row stops once it has k
        # members, so a large coalition costs a few columns, not K.
        picked = np.zeros((n_rows, self.k))
        count = np.zeros(n_rows, dtype=np.int64)
        rows = np.arange(n_rows)
        start, block = 0, 4 * self.k
        while len(rows) and start < n_cols:
            stop = min(n_cols, start + block)
            in_s = mask[self.order[rows, start:stop]]
            rank = np.cumsum(in_s, axis=1) - 1 + count[rows][:, None]
            r, c = np.nonzero(in_s & (rank < self.k))
            picked[rows[r], rank[r, c]] = self.match_sorted[rows[r], start + c]
            count[rows] += in_s.sum(1)
            rows = rows[count[rows] < self.k]
            start, block = stop, block * 2
        return float(picked.sum(1).mean() / self.k)


@dataclass(frozen=True)
class KNNSettings:
    k: int = field(default=5, metadata={"help": "neighbours of each validation row that answer it"})


def build(settings: KNNSettings, inputs: UtilityInputs) -> BuiltUtility:
    proxies, validation = inputs.proxies, inputs.validation
    val_vecs = validation["embedding"].to_numpy()
    utility = KNNUtility(
        vectors(proxies), proxies["output"].to_list(), val_vecs, validation["output"].to_list(), k=settings.k
    )
    # Everything U(S) depends on besides S: the settings and the validation rows (ids, vectors, answers).
    key_settings = {"k": settings.k, "match": "token_f1/v1"}
    data = fingerprint_arrays(
        validation["row_id"].to_list(), np.asarray(val_vecs, dtype=np.float32), validation["output"].to_list()
    )
    description = {
        "utility": STRATEGY.name,
        "settings": key_settings,
        "validation_rows": validation.height,
        "validation_fingerprint": data,
    }
    return BuiltUtility(
        utility, utility_key(STRATEGY.name, key_settings, data), description, vector_identities(proxies)
    )


STRATEGY = Strategy(
    name="knn",
    summary=(
        "k nearest proxies (prompt embeddings) answer each validation row; U = mean token-F1 of their outputs "
        "(model-free, fast)"
    ),
    settings=KNNSettings,
    run=build,
)
