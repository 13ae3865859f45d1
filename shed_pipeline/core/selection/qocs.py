"""QOCS, SHED's quality-ordered cluster sampling: whole clusters by descending proxy score.

Clusters are walked by descending score (ties: lower id first) and taken whole until n rows are
collected; the last cluster is truncated. With `member_order` "source" (the default) members are
taken in the clusters' order, exactly as SHED; with a per-row value kind the best members come first,
so a truncated cluster keeps its best rows and each row's reason shows its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shed_pipeline.core.selection.base import (
    MEMBER_ORDER_HELP,
    RANDOM,
    SOURCE,
    Selection,
    SelectionInputs,
    check_member_order,
    format_value,
    ordered_members,
)
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class QocsSettings:
    member_order: str = field(default=SOURCE, metadata={"help": MEMBER_ORDER_HELP + "; 'source' is SHED's QOCS"})


def score_order(scores: list[float], cluster_ids: list[int]) -> list[int]:
    """Cluster positions by descending score, ties by lower cluster id."""
    return sorted(range(len(cluster_ids)), key=lambda c: (-float(scores[c]), int(cluster_ids[c])))


def run(inputs: SelectionInputs, settings: QocsSettings) -> list[Selection]:
    scores = inputs.require_scores("qocs")
    order_by = settings.member_order
    values = check_member_order(order_by, inputs)
    rng = np.random.default_rng(inputs.seed)
    ids = [c.cluster_id for c in inputs.clusters]
    order = score_order(scores, ids)
    out: list[Selection] = []
    for rank, c in enumerate(order, start=1):
        room = inputs.n - len(out)
        if room <= 0:
            break
        members = inputs.clusters[c].members
        take = ordered_members(members, order_by, values, rng)[:room]
        whole = len(take) == len(members)
        head = f"qocs: cluster {int(ids[c])} ranked {rank}/{len(order)} by proxy score {float(scores[c]):.6g}; "
        first = {SOURCE: "first", RANDOM: "random"}.get(order_by, "best")
        by = "" if values is None else f" by {order_by}"
        head += (
            "whole cluster taken" if whole else f"{first} {len(take)} of {len(members)} members{by} (target reached)"
        )
        for i, rid in enumerate(take, start=1):
            tail = "" if values is None else f"; member {i} by {order_by} ({format_value(order_by, values, rid)})"
            out.append(Selection(rid, int(ids[c]), len(out), head + tail))
    return out


STRATEGY = Strategy(
    "qocs", "SHED's QOCS: whole clusters by descending proxy score until the target is reached", QocsSettings, run
)
