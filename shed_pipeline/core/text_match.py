"""How well one answer matches a reference: token-set F1, vectorised over all pairs with sparse products."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


def token_f1(a: str, b: str) -> float:
    """2|A∩B| / (|A|+|B|) on lower-cased word sets; 1 for two empty answers, 0 if only one is empty."""
    return set_f1(tokens(a), tokens(b))


def set_f1(ta: set[str], tb: set[str]) -> float:
    """token_f1 of two token sets (the same bits as token_f1_matrix's entry)."""
    if not ta and not tb:
        return 1.0
    if not ta or not tb:
        return 0.0
    return 2.0 * len(ta & tb) / (len(ta) + len(tb))


def token_f1_matrix(queries: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """F1[i, j] = token_f1(answers[j], queries[i]) for all pairs, as float64 (len(queries), len(answers))."""
    vocab: dict[str, int] = {}

    def binary(texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        rows, cols = [], []
        for i, t in enumerate(texts):
            for tok in tokens(t):
                rows.append(i)
                cols.append(vocab.setdefault(tok, len(vocab)))
        sizes = np.bincount(np.asarray(rows, dtype=np.int64), minlength=len(texts)).astype(np.float64)
        return (rows, cols), sizes  # type: ignore[return-value]

    (qr, qc), qsize = binary(queries)
    (ar, ac), asize = binary(answers)
    w = max(1, len(vocab))
    q = sp.csr_matrix((np.ones(len(qr)), (qr, qc)), shape=(len(queries), w))
    a = sp.csr_matrix((np.ones(len(ar)), (ar, ac)), shape=(len(answers), w))
    overlap = (q @ a.T).toarray()
    denom = qsize[:, None] + asize[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2.0 * overlap / denom, 1.0)
    # One side empty, the other not: no match.
    f1[(qsize[:, None] == 0) ^ (asize[None, :] == 0)] = 0.0
    return f1
