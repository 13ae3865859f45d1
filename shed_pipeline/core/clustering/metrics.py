"""Agreement between two clusterings (or a clustering and known labels): normalized mutual information."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def normalized_mutual_info(labels_a: Sequence, labels_b: Sequence) -> float:
    """NMI with arithmetic-mean normalisation (scikit-learn's default)."""
    a = np.unique(np.asarray(labels_a), return_inverse=True)[1]
    b = np.unique(np.asarray(labels_b), return_inverse=True)[1]
    n = len(a)
    if n == 0:
        return 0.0
    cont = np.zeros((a.max() + 1, b.max() + 1), dtype=np.float64)
    np.add.at(cont, (a, b), 1.0)
    pa, pb, pab = cont.sum(1) / n, cont.sum(0) / n, cont / n
    nz = pab > 0
    mi = float((pab[nz] * np.log(pab[nz] / (pa[:, None] * pb[None, :])[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0.0 and hb == 0.0:
        return 1.0
    denom = (ha + hb) / 2
    return max(0.0, mi / denom) if denom > 0 else 0.0
