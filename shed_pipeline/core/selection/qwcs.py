"""QWCS, SHED's quality-weighted cluster sampling: n draws, each picks a cluster by a softmax of the
proxy scores, then one unused member of it.

w_c = exp(S_c / T) / sum exp(S_c' / T), SHED's softmax with beta = 1 / T; an exhausted cluster is
re-drawn, i.e. the weights renormalise over the clusters with members left. The default temperature
is the scores' standard deviation (SHED's beta = 1 on scores of ~0.01 is nearly uniform). Inside the
drawn cluster `member_order` "random" (the default, SHED's rule) takes a random unused member;
"source" the first unused one; a per-row value kind the best unused one, shown in the row's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from shed_pipeline.core.selection.base import MEMBER_ORDER_HELP, RANDOM, SOURCE, Selection, SelectionInputs, check_member_order, format_value, ordered_members
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class QwcsSettings:
    temperature: Optional[float] = field(default=None, metadata={"help": "softmax temperature 1/beta over the proxy scores; default: their standard deviation"})
    member_order: str = field(default=RANDOM, metadata={"help": MEMBER_ORDER_HELP + "; 'random' is SHED's QWCS"})


def qwcs_weights(scores: Sequence[float], temperature: float) -> np.ndarray:
    """w_c = exp(S_c / T) / sum exp(S_c' / T): SHED's softmax with beta = 1 / T."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.asarray(scores, dtype=np.float64) / temperature
    z -= z.max()
    w = np.exp(z)
    return w / w.sum()


def auto_temperature(scores: Sequence[float]) -> float:
    """Default temperature: the scores' standard deviation, so weights span a few e-folds whatever
    the utility's scale (SHED's beta = 1 on scores of ~0.01 is nearly uniform)."""
    s = float(np.std(np.asarray(scores, dtype=np.float64)))
    return s if s > 0 else 1.0


def _cdf(w: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The draw's cumulative weights over the live clusters, computed as Generator.choice(p=...)
    does from SHED's renormalised weights, so a draw is `cdf.searchsorted(rng.random(), "right")`:
    the same numbers as choice, with the O(K) work redone only when a cluster runs out."""
    p = np.where(live, w, 0.0)
    p_sum = p.sum()
    if p_sum <= 0:  # weights underflowed on every live cluster: fall back to uniform over them
        p = live.astype(np.float64)
        p_sum = p.sum()
    cdf = (p / p_sum).cumsum()
    cdf /= cdf[-1]
    return cdf


def run(inputs: SelectionInputs, settings: QwcsSettings) -> list[Selection]:
    scores = inputs.require_scores("qwcs")
    order_by = settings.member_order
    values = check_member_order(order_by, inputs)
    temperature = settings.temperature if settings.temperature is not None else auto_temperature(scores)
    ids = [c.cluster_id for c in inputs.clusters]
    n = inputs.n
    total = sum(len(c.members) for c in inputs.clusters)
    if n > total:
        raise ValueError(f"cannot draw {n} rows from {total}")
    if n <= 0:
        return []
    w = qwcs_weights(scores, temperature)
    rng = np.random.default_rng(inputs.seed)
    if order_by == RANDOM:
        remaining = [list(c.members) for c in inputs.clusters]
    else:  # the take order is fixed up front; a draw takes the next member (no rng use here)
        remaining = [ordered_members(c.members, order_by, values, None)[::-1] for c in inputs.clusters]
    live = np.array([len(m) > 0 for m in remaining])
    cdf = _cdf(w, live)
    out: list[Selection] = []
    while len(out) < n:
        c = int(cdf.searchsorted(rng.random(), side="right"))
        if order_by == RANDOM:
            j = int(rng.integers(len(remaining[c])))
            rid = remaining[c].pop(j)
            how = ""
        else:
            rid = remaining[c].pop()
            how = "; first unused member in source order" if order_by == SOURCE else f"; best unused member by {order_by} ({format_value(order_by, values, rid)})"
        out.append(Selection(rid, int(ids[c]), len(out), f"qwcs: draw {len(out) + 1}, cluster {int(ids[c])} (score {float(scores[c]):.6g}, weight {w[c]:.4g}, T={temperature:.4g})" + how))
        if not remaining[c]:
            live[c] = False
            if len(out) < n:
                cdf = _cdf(w, live)
    return out


STRATEGY = Strategy("qwcs", "SHED's QWCS: each draw picks a cluster by a softmax of proxy scores, then one unused member", QwcsSettings, run)
