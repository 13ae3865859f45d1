"""Model-free evaluation of a curated subset: coverage, diversity, and held-out utility against
random subsets of the same size and the full pool."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from shed_pipeline.core.utilities.knn import TRAIN_BLOCK, heldout_utility


def mean_pairwise_cosine_distance(vectors: np.ndarray) -> float:
    """1 - mean cosine similarity over distinct pairs of unit vectors, in O(n d):
    sum over pairs of v_i . v_j = (|sum v|^2 - sum |v_i|^2) / 2."""
    n = len(vectors)
    if n < 2:
        return 0.0
    s = 0.0
    for start in range(0, n, TRAIN_BLOCK):  # in blocks: no float64 copy of a whole pool
        v = np.asarray(vectors[start : start + TRAIN_BLOCK], dtype=np.float64)
        s = s + (v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)).sum(0)
    mean_sim = (float(s @ s) - n) / (n * (n - 1))
    return 1.0 - mean_sim


def subset_report(
    selected: Sequence[int],
    pool_vectors: np.ndarray,
    *,
    pool_outputs: Sequence[str],
    pool_clusters: Sequence[int],
    pool_tasks: Sequence[str | None],
    test_vectors: np.ndarray,
    test_references: Sequence[str],
    k: int,
    random_seeds: Sequence[int],
    include_full_pool: bool = True,
) -> dict:
    """Metrics of the subset given by pool indices `selected`, with random same-size baselines."""
    sel = np.asarray(selected, dtype=np.int64)
    n_pool = len(pool_outputs)
    clusters = np.asarray(pool_clusters)
    report: dict = {
        "subset_size": int(len(sel)),
        "pool_size": int(n_pool),
        "subset_fraction": len(sel) / n_pool if n_pool else 0.0,
        "clusters_total": int(len(np.unique(clusters))),
        "clusters_covered": int(len(np.unique(clusters[sel]))) if len(sel) else 0,
        "diversity": mean_pairwise_cosine_distance(pool_vectors[sel]),
        "pool_diversity": mean_pairwise_cosine_distance(pool_vectors),
    }
    report["cluster_coverage"] = report["clusters_covered"] / max(1, report["clusters_total"])
    tasks = [t for t in pool_tasks if t is not None]
    if tasks:
        all_tasks = set(tasks)
        sub_tasks = {pool_tasks[i] for i in sel if pool_tasks[i] is not None}
        report["tasks_total"] = len(all_tasks)
        report["tasks_covered"] = len(sub_tasks)
        report["task_coverage"] = len(sub_tasks) / len(all_tasks)

    def util(idx: np.ndarray | None) -> float:  # None: the whole pool, without a copy
        if idx is None:
            return heldout_utility(pool_vectors, pool_outputs, test_vectors, test_references, k)
        return heldout_utility(pool_vectors[idx], [pool_outputs[i] for i in idx], test_vectors, test_references, k)

    if len(test_references):
        report["utility_subset"] = util(sel)
        rand = []
        for s in random_seeds:
            idx = np.sort(np.random.default_rng(s).choice(n_pool, size=len(sel), replace=False))
            rand.append(util(idx))
        report["utility_random"] = rand
        report["utility_random_mean"] = float(np.mean(rand)) if rand else None
        report["utility_random_std"] = float(np.std(rand)) if rand else None
        if include_full_pool:
            report["utility_full_pool"] = util(None)
    return report


def arm_metrics(
    selected: Sequence[int],
    pool_vectors: np.ndarray,
    *,
    pool_outputs: Sequence[str],
    pool_clusters: Sequence[int],
    pool_tasks: Sequence[str | None],
    test_vectors: np.ndarray,
    test_references: Sequence[str],
    k: int,
) -> dict:
    """The model-free metrics of one arm (e.g. a baseline selection): size, clusters and tasks
    covered, diversity and (with test rows) the held-out kNN utility."""
    sel = np.asarray(selected, dtype=np.int64)
    clusters = np.asarray(pool_clusters)
    out: dict = {
        "subset_size": int(len(sel)),
        "clusters_covered": int(len(np.unique(clusters[sel]))) if len(sel) else 0,
        "diversity": mean_pairwise_cosine_distance(pool_vectors[sel]),
    }
    if any(t is not None for t in pool_tasks):
        out["tasks_covered"] = len({pool_tasks[i] for i in sel if pool_tasks[i] is not None})
    if len(test_references):
        out["utility"] = heldout_utility(
            pool_vectors[sel], [pool_outputs[i] for i in sel], test_vectors, test_references, k
        )
    return out


def selected_pool_indices(pool_ids: list[str], subset_ids: list[str]) -> np.ndarray:
    """Positions of the subset's rows in the pool; KeyError names a row outside the pool."""
    pos = {r: i for i, r in enumerate(pool_ids)}
    return np.array([pos[r] for r in subset_ids], dtype=np.int64)
