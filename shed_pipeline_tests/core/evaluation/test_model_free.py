"""core/evaluation/model_free.py: diversity, coverage and the held-out kNN utility of a subset."""

import itertools

import numpy as np
import pytest

from shed_pipeline.core.evaluation import mean_pairwise_cosine_distance, subset_report


def test_diversity_equals_brute_force_pairs():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(12, 5))
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    brute = np.mean([1 - u[i] @ u[j] for i, j in itertools.combinations(range(12), 2)])
    assert mean_pairwise_cosine_distance(v) == pytest.approx(brute)
    assert mean_pairwise_cosine_distance(v[:1]) == 0.0


def test_subset_report_counts_and_baselines():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    outputs = [f"label{i % 4}" for i in range(40)]
    r = subset_report(
        [0, 1, 2, 5],
        x,
        pool_outputs=outputs,
        pool_clusters=[i % 8 for i in range(40)],
        pool_tasks=[f"t{i % 4}" for i in range(40)],
        test_vectors=x[:6],
        test_references=outputs[:6],
        k=1,
        random_seeds=[0, 1, 2],
    )
    assert r["subset_size"] == 4 and r["pool_size"] == 40 and r["subset_fraction"] == 0.1
    assert (r["clusters_covered"], r["clusters_total"]) == (4, 8)
    assert (r["tasks_covered"], r["tasks_total"]) == (3, 4)
    assert len(r["utility_random"]) == 3
    # The test rows are pool rows here, so the full pool answers each one with itself.
    assert r["utility_full_pool"] == pytest.approx(1.0)


def test_arm_metrics_of_a_baseline_match_the_subset_report():
    from shed_pipeline.core.evaluation import arm_metrics

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    outputs = [f"label{i % 4}" for i in range(40)]
    args = dict(
        pool_outputs=outputs,
        pool_clusters=[i % 8 for i in range(40)],
        pool_tasks=[f"t{i % 4}" for i in range(40)],
        test_vectors=x[:6],
        test_references=outputs[:6],
    )
    r = subset_report([0, 1, 2, 5], x, **args, k=1, random_seeds=[])
    m = arm_metrics([0, 1, 2, 5], x, **args, k=1)
    assert m == {
        "subset_size": 4,
        "clusters_covered": 4,
        "tasks_covered": 3,
        "diversity": r["diversity"],
        "utility": r["utility_subset"],
    }
    assert arm_metrics(np.arange(40), x, **args, k=1)["utility"] == pytest.approx(1.0)


def test_diversity_in_blocks_equals_one_pass(monkeypatch):
    from shed_pipeline.core.evaluation import model_free

    v = np.random.default_rng(5).normal(size=(50, 4))
    one_pass = model_free.mean_pairwise_cosine_distance(v)
    monkeypatch.setattr(model_free, "TRAIN_BLOCK", 7)
    assert model_free.mean_pairwise_cosine_distance(v) == pytest.approx(one_pass, rel=1e-12)
