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
        outputs,
        [i % 8 for i in range(40)],
        [f"t{i % 4}" for i in range(40)],
        x[:6],
        outputs[:6],
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
    args = (x, outputs, [i % 8 for i in range(40)], [f"t{i % 4}" for i in range(40)], x[:6], outputs[:6])
    r = subset_report([0, 1, 2, 5], *args, k=1, random_seeds=[])
    m = arm_metrics([0, 1, 2, 5], *args, k=1)
    assert m == {
        "subset_size": 4,
        "clusters_covered": 4,
        "tasks_covered": 3,
        "diversity": r["diversity"],
        "utility": r["utility_subset"],
    }
    assert arm_metrics(np.arange(40), *args, k=1)["utility"] == pytest.approx(1.0)


def test_diversity_in_blocks_equals_one_pass(monkeypatch):
    import shed_pipeline.core.evaluation as evaluation

    v = np.random.default_rng(5).normal(size=(50, 4))
    one_pass = evaluation.mean_pairwise_cosine_distance(v)
    monkeypatch.setattr(evaluation, "TRAIN_BLOCK", 7)
    assert evaluation.mean_pairwise_cosine_distance(v) == pytest.approx(one_pass, rel=1e-12)


def test_the_heldout_utility_uses_the_first_heldout_rows_test_rows_by_id():
    """Its cost is test rows x pool rows per arm: evaluation_report caps the test rows at
    `heldout_rows` (the first by row id, a fixed sample), and 0 means the whole test split."""
    from types import SimpleNamespace

    import polars as pl

    from shed_pipeline.core.evaluation_report import evaluation_report

    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pool = pl.DataFrame(
        {
            "row_id": [f"p{i:02d}" for i in range(30)],
            "output": [f"w{i % 5} w{i % 3}" for i in range(30)],
            "task": [f"t{i % 4}" for i in range(30)],
        }
    )
    test_x = rng.normal(size=(9, 4))
    test = pl.DataFrame(
        {
            "row_id": [f"q{i}" for i in (5, 2, 8, 0, 7, 1, 3, 6, 4)],
            "output": [f"w{i % 5}" for i in range(9)],
            "embedding": list(test_x),
        }
    )
    clusters = [i % 6 for i in range(30)]
    curated = np.array([0, 3, 7, 12])
    first3 = test.sort("row_id").head(3)  # q0, q1, q2
    for rows, held in ((3, first3), (0, test), (50, test)):
        settings = SimpleNamespace(seed=0, random_seeds=2, k=2, include_full_pool=True, heldout_rows=rows, lm=False)
        got = evaluation_report(settings, pool, x, clusters, test, curated, {}, "cpu", None, None, lambda _m: None)
        want = subset_report(
            curated,
            x,
            pool["output"].to_list(),
            clusters,
            pool["task"].to_list(),
            np.stack(held["embedding"].to_list()),
            held["output"].to_list(),
            k=2,
            random_seeds=[0, 1],
            include_full_pool=True,
        )
        assert got["test_rows"] == held.height
        assert {key: got[key] for key in want} == want
