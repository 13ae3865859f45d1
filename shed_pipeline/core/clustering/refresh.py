"""Incremental refresh of a clustering, and the drift rule that decides when to fit from scratch.

A refresh assigns new rows to their nearest anchor and drops removed rows; only clusters whose
membership changed ("affected") get a new centroid and proxy. So a refresh equals
`clusters_from_anchors` run from scratch on the same rows and anchors, which is what the tests
check. Too much change since the fit (the drift rule), or changed settings, fit from scratch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from shed_pipeline.core.clustering.assignment import nearest_anchor
from shed_pipeline.core.clustering.fit import default_n_clusters, fit_clusters, sq_dist_to, summarise_cluster
from shed_pipeline.core.clustering.seeded_kmeans import DEFAULT_MAX_ITER, check_warm_start
from shed_pipeline.core.clustering.state import ClusterState, FitInfo
from shed_pipeline.core.progress import Log, silent


@dataclass
class DriftRule:
    """When a refresh re-fits instead: too many rows changed since the fit, or rows sit much
    farther from their anchors than at fit time (the anchors no longer describe the data)."""

    max_churn: float = 0.25  # (rows joined + rows left since the fit) / rows at the fit
    max_distance_rise: float = 0.10  # relative rise of the mean squared distance to the anchors


@dataclass(kw_only=True)
class ClusterUpdate:
    state: ClusterState
    full_refit: bool
    reason: str  # why a full fit ran, or why a refresh was enough
    affected: list[int]  # cluster ids whose membership changed (all non-empty ones on a full fit)
    rows_new: int  # rows not in the previous clustering
    rows_removed: int  # previous rows no longer present
    churn: float | None = None
    distance_rise: float | None = None


def update_clusters(
    previous: ClusterState | None,
    row_ids: Sequence[str],
    x: np.ndarray,
    n_clusters: int | None,
    seed: int,
    *,
    device: str = "cpu",
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = 1e-4,
    rule: DriftRule | None = None,
    force_refit: bool = False,
    fit_salt: str = "",
    log: Log = silent,
    warm_start: float = 0.0,
) -> ClusterUpdate:
    """Refresh `previous` with the current rows, or fit from scratch when the drift rule (or the
    caller, or a settings change) says so. `n_clusters` None keeps the previous k, or picks
    `default_n_clusters` on a full fit."""
    rule = rule or DriftRule()
    n = len(row_ids)
    check_warm_start(warm_start)
    reason = _refit_reason(
        previous,
        row_ids,
        x,
        n_clusters,
        seed,
        max_iter=max_iter,
        tol=tol,
        force=force_refit,
        warm_start=warm_start,
    )
    new_ids: list[int] = []
    churn = rise = None
    if reason is None:
        prev = previous
        assert prev is not None
        known = {r: c for c, ms in enumerate(prev.member_row_ids) for r in ms}  # row -> its cluster
        current = set(row_ids)
        new_ids = [i for i, r in enumerate(row_ids) if r not in known]
        left = [r for r in known if r not in current]
        churn = (prev.fit.rows_joined + len(new_ids) + prev.fit.rows_left + len(left)) / max(prev.fit.rows_at_fit, 1)
        labels = np.array([known.get(r, -1) for r in row_ids], dtype=np.int64)
        if new_ids:
            labels[new_ids], _ = nearest_anchor(x[new_ids], prev.anchors)
        msd = float(sq_dist_to(x, np.arange(n), prev.anchors, labels).mean())
        rise = msd / prev.fit.anchor_msd_at_fit - 1.0 if prev.fit.anchor_msd_at_fit > 0 else 0.0
        if churn > rule.max_churn:
            reason = f"{churn:.1%} of rows changed since the last fit (limit {rule.max_churn:.0%})"
        elif rise > rule.max_distance_rise:
            reason = (
                f"rows sit {rise:.1%} farther from their centroids than at the last fit "
                f"(limit {rule.max_distance_rise:.0%})"
            )
    if reason is not None:
        k = n_clusters or default_n_clusters(n)  # as a fresh run would choose: a re-fit equals a fresh run
        if k > n:
            raise ValueError(f"n_clusters={k} exceeds the {n} pool rows")
        state = fit_clusters(
            row_ids,
            x,
            k,
            seed=seed,
            device=device,
            max_iter=max_iter,
            tol=tol,
            salt=fit_salt,
            log=log,
            warm_start=warm_start,
        )
        affected = [c for c in range(state.k) if state.member_row_ids[c]]
        old = set() if previous is None else {r for ms in previous.member_row_ids for r in ms}
        return ClusterUpdate(
            state=state,
            full_refit=True,
            reason=reason,
            affected=affected,
            rows_new=sum(r not in old for r in row_ids),
            rows_removed=len(old - set(row_ids)),
            churn=churn,
            distance_rise=rise,
        )

    # Refresh: rebuild member lists in input order; recompute only the affected clusters.
    k = prev.k
    affected_set = {int(labels[i]) for i in new_ids} | {known[r] for r in left}
    state = ClusterState(
        anchors=prev.anchors,
        centroids=prev.centroids.copy(),
        proxy_row_ids=list(prev.proxy_row_ids),
        member_row_ids=[[] for _ in range(k)],
        member_sq_dist=[[] for _ in range(k)],
        fit=FitInfo(
            **{
                **asdict(prev.fit),
                "rows_joined": prev.fit.rows_joined + len(new_ids),
                "rows_left": prev.fit.rows_left + len(left),
            }
        ),
    )
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    for c in range(k):
        idx = order[bounds[c] : bounds[c + 1]]
        if c in affected_set:
            if len(idx):
                state.centroids[c], state.proxy_row_ids[c], state.member_row_ids[c], state.member_sq_dist[c] = (
                    summarise_cluster(idx, row_ids, x)
                )
            else:
                state.centroids[c], state.proxy_row_ids[c] = prev.anchors[c], None
        else:
            # Unchanged membership: same centroid and proxy; members follow the current input order.
            state.member_row_ids[c] = [row_ids[i] for i in idx]
            old = dict(zip(prev.member_row_ids[c], prev.member_sq_dist[c], strict=True))
            state.member_sq_dist[c] = [old[r] for r in state.member_row_ids[c]]
    why = (
        "no change since the last run"
        if not affected_set
        else f"{len(new_ids)} new and {len(left)} removed rows; churn {churn:.1%} and distance rise "
        f"{rise:+.1%} are within the drift rule"
    )
    return ClusterUpdate(
        state=state,
        full_refit=False,
        reason=why,
        affected=sorted(affected_set),
        rows_new=len(new_ids),
        rows_removed=len(left),
        churn=churn,
        distance_rise=rise,
    )


def _refit_reason(
    previous: ClusterState | None,
    row_ids: Sequence[str],
    x: np.ndarray,
    n_clusters: int | None,
    seed: int,
    *,
    max_iter: int,
    tol: float,
    force: bool,
    warm_start: float = 0.0,
) -> str | None:
    if force:
        return "a full re-fit was asked for"
    if previous is None:
        return "no previous clustering"
    f = previous.fit
    if f.dim != x.shape[1]:
        return f"embedding dimension changed ({f.dim} -> {x.shape[1]})"
    if n_clusters is not None and n_clusters != f.k:
        return f"n_clusters changed ({f.k} -> {n_clusters})"
    if (f.seed, f.max_iter, f.tol, f.warm_start) != (int(seed), max_iter, tol, float(warm_start)):
        return "k-means settings (seed, max_iter, tol, warm_start) changed"
    pos = {r: i for i, r in enumerate(row_ids)}
    kept = [
        (pos[r], c, d)
        for c, (ms, ds) in enumerate(zip(previous.member_row_ids, previous.member_sq_dist, strict=True))
        for r, d in zip(ms, ds, strict=True)
        if r in pos
    ]
    if not kept:
        return "no rows in common with the previous clustering"
    idx = np.array([p for p, _, _ in kept])
    cl = np.array([c for _, c, _ in kept])
    stored = np.array([d for _, _, d in kept])
    now = sq_dist_to(x, idx, previous.centroids, cl)
    if not np.allclose(now, stored, rtol=1e-6, atol=1e-9):
        return "embeddings of existing rows changed (another embedding model?)"
    return None
