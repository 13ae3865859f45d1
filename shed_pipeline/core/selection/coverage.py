"""coverage: SHED's cluster ranking with a per-cluster cap, taken round-robin, so the subset covers
as many clusters as it has rows (up to all of them) instead of a few whole clusters.

Rule. Clusters are ranked by descending proxy score (ties: lower id first). Round 1 takes one member
from every cluster in rank order, round 2 a second one from every cluster still under its cap, and
so on until n rows are taken; a round cut short by the target favours the better-ranked clusters.
A cluster's cap is `cap` rows if given, else `cap_fraction` of its size (rounded up) if given, else
max(1, ceil(n / K)) for K clusters; a cluster smaller than its cap gives all its rows. So the first
min(n, K) rows come from min(n, K) distinct clusters, and no cluster gives more than its cap. If
every cluster reaches its cap (or runs out) before n rows, the caps are lifted and the rounds go on
over the clusters with rows left (said in those rows' reasons). `member_order` chooses which member
a cluster gives next ("source": in the clusters' order; a per-row value kind: best first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from shed_pipeline.core.selection.base import (
    MEMBER_ORDER_HELP,
    SOURCE,
    Selection,
    SelectionInputs,
    check_member_order,
    format_value,
    ordered_members,
)
from shed_pipeline.core.selection.qocs import score_order
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class CoverageSettings:
    cap: Optional[int] = field(
        default=None, metadata={"help": "most rows a cluster gives; default: max(1, ceil(target / clusters))"}
    )
    cap_fraction: Optional[float] = field(
        default=None,
        metadata={"help": "instead of cap: most rows a cluster gives, as a share of its size (rounded up)"},
    )
    member_order: str = field(default=SOURCE, metadata={"help": MEMBER_ORDER_HELP})


def caps(sizes: list[int], n: int, settings: CoverageSettings) -> list[int]:
    """Each cluster's cap (see the module's docstring)."""
    if settings.cap is not None and settings.cap_fraction is not None:
        raise ValueError("coverage: give cap or cap_fraction, not both")
    if settings.cap is not None:
        if settings.cap < 1:
            raise ValueError(f"coverage: cap must be at least 1, got {settings.cap}")
        return [settings.cap] * len(sizes)
    if settings.cap_fraction is not None:
        if not 0 < settings.cap_fraction <= 1:
            raise ValueError(f"coverage: cap_fraction must be in (0, 1], got {settings.cap_fraction}")
        return [max(1, math.ceil(settings.cap_fraction * s)) for s in sizes]
    live = sum(1 for s in sizes if s)
    return [max(1, math.ceil(n / max(1, live)))] * len(sizes)


def run(inputs: SelectionInputs, settings: CoverageSettings) -> list[Selection]:
    scores = inputs.require_scores("coverage")
    order_by = settings.member_order
    values = check_member_order(order_by, inputs)
    rng = np.random.default_rng(inputs.seed)
    ids = [c.cluster_id for c in inputs.clusters]
    sizes = [len(c.members) for c in inputs.clusters]
    cap = caps(sizes, inputs.n, settings)
    total = sum(sizes)
    if inputs.n > total:
        raise ValueError(f"cannot take {inputs.n} rows from {total}")
    order = score_order(scores, ids)
    rank_of = {c: r for r, c in enumerate(order, start=1)}
    take_order = [ordered_members(c.members, order_by, values, rng) for c in inputs.clusters]
    taken = [0] * len(sizes)
    active = [c for c in order if sizes[c]]
    lifted, round_no = False, 1
    out: list[Selection] = []
    while len(out) < inputs.n:
        if not active:  # every cluster is at its cap or empty: lift the caps
            lifted = True
            active = [c for c in order if taken[c] < sizes[c]]
            continue
        after: list[int] = []
        for c in active:
            if len(out) >= inputs.n:
                break
            rid = take_order[c][taken[c]]
            taken[c] += 1
            reason = (
                f"coverage: round {round_no}, cluster {ids[c]} ranked {rank_of[c]}/{len(order)} by proxy score "
                f"{scores[c]:.6g}; member {taken[c]} of {sizes[c]} (cap {cap[c]})"
            )
            if values is not None:
                reason += f", best first by {order_by} ({format_value(order_by, values, rid)})"
            if lifted:
                reason += "; caps lifted: every cluster had reached its cap before the target"
            out.append(Selection(rid, int(ids[c]), len(out), reason))
            if taken[c] < (sizes[c] if lifted else min(cap[c], sizes[c])):
                after.append(c)
        active = after
        round_no += 1
    return out


STRATEGY = Strategy(
    "coverage",
    "SHED's cluster ranking, taken round-robin with a per-cluster cap: covers min(target, clusters) clusters",
    CoverageSettings,
    run,
)
