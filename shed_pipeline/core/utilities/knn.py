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
from shed_pipeline.core.text_match import token_f1_matrix
from shed_pipeline.core.utilities.cache import fingerprint_arrays, utility_key
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs, vector_identities, vectors


def check_knn_inputs(player_vectors, player_outputs: Sequence[str], query_vectors, query_references: Sequence[str], k: int) -> None:
    """The knn game's inputs make sense: k >= 1, texts aligned with vectors, a validation row."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(player_outputs) != len(player_vectors) or len(query_references) != len(query_vectors):
        raise ValueError("vectors and texts differ in length")
    if len(query_vectors) == 0:
        raise ValueError("the kNN utility needs at least one validation row")


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
        sim = np.asarray(query_vectors, dtype=np.float64) @ np.asarray(player_vectors, dtype=np.float64).T
        # Rounded so that the last bits of a matrix product (which depend on its shape, i.e. on the
        # other players) cannot reorder two neighbours. Nearest first; ties go to the lower player
        # index (stable sort), which keeps its relative order when players join or leave.
        sim = np.round(sim, 12)
        self.order = np.argsort(-sim, axis=1, kind="stable")
        self.match = token_f1_matrix(query_references, player_outputs)  # (V, K)
        self.match_sorted = np.take_along_axis(self.match, self.order, axis=1)

    @classmethod
    def from_matrices(cls, order: np.ndarray, match: np.ndarray, k: int) -> "KNNUtility":
        """Build from a precomputed neighbour order and match matrix (tests, synthetic games)."""
        self = cls.__new__(cls)
        self.k = int(k)
        self.order = np.asarray(order)
        self.match = np.asarray(match, dtype=np.float64)
        self.n_players = self.match.shape[1]
        self.match_sorted = np.take_along_axis(self.match, self.order, axis=1)
        return self

    def value(self, members: np.ndarray) -> float:
        """U(S), computed from S's members only: the same bits whatever other players exist, so a
        value cached in one run equals the value a later run with more or fewer players computes."""
        mask = np.asarray(members, dtype=bool)
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
    utility = KNNUtility(vectors(proxies), proxies["output"].to_list(), val_vecs, validation["output"].to_list(), k=settings.k)
    # Everything U(S) depends on besides S: the settings and the validation rows (ids, vectors, answers).
    key_settings = {"k": settings.k, "match": "token_f1/v1"}
    data = fingerprint_arrays(validation["row_id"].to_list(), np.asarray(val_vecs, dtype=np.float32), validation["output"].to_list())
    description = {"utility": STRATEGY.name, "settings": key_settings, "validation_rows": validation.height, "validation_fingerprint": data}
    return BuiltUtility(utility, utility_key(STRATEGY.name, key_settings, data), description, vector_identities(proxies))


STRATEGY = Strategy(
    name="knn",
    summary="k nearest proxies (prompt embeddings) answer each validation row; U = mean token-F1 of their outputs (model-free, fast)",
    settings=KNNSettings,
    run=build,
)
