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
    r = subset_report([0, 1, 2, 5], x, outputs, [i % 8 for i in range(40)], [f"t{i % 4}" for i in range(40)], x[:6], outputs[:6], k=1, random_seeds=[0, 1, 2])
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
    assert m == {"subset_size": 4, "clusters_covered": 4, "tasks_covered": 3, "diversity": r["diversity"], "utility": r["utility_subset"]}
    assert arm_metrics(np.arange(40), *args, k=1)["utility"] == pytest.approx(1.0)


def _ties_game(seed: int):
    """Pool vectors with exact duplicates (ties in similarity) and outputs sharing words."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(9, 6))
    pool = np.concatenate([base, base[[0, 0, 3, 5]], rng.normal(size=(10, 6))])  # 23 rows, ties
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    words = ["red", "blue", "green", "cat", "dog", "sky", "sea"]
    outputs = [" ".join(rng.choice(words, size=rng.integers(0, 4))) for _ in range(len(pool))]
    test = np.concatenate([base[:3], rng.normal(size=(8, 6))])
    test /= np.linalg.norm(test, axis=1, keepdims=True)
    refs = [" ".join(rng.choice(words, size=rng.integers(0, 4))) for _ in range(len(test))]
    return pool, outputs, test, refs


@pytest.mark.parametrize("k", [1, 3, 5, 30])
def test_nearest_rows_in_small_blocks_equal_the_dense_stable_order(k):
    from shed_pipeline.core.evaluation import nearest_rows

    pool, _, test, _ = _ties_game(2)
    dense = np.argsort(-np.round(test @ pool.T, 12), axis=1, kind="stable")[:, : min(k, len(pool))]
    for blocks in [(1, 1), (3, 5), (4, 7), (1024, 16384)]:
        np.testing.assert_array_equal(nearest_rows(pool, test, k, *blocks), dense)


@pytest.mark.parametrize("k", [1, 3, 5, 30])
def test_heldout_utility_from_nearest_rows_equals_the_dense_knn_utility_bit_for_bit(k, monkeypatch):
    import shed_pipeline.core.evaluation as evaluation
    from shed_pipeline.core.utilities.knn import KNNUtility

    for seed in range(4):
        pool, outputs, test, refs = _ties_game(seed)
        dense = KNNUtility(pool, outputs, test, refs, k=k)
        expected = dense.value(np.ones(len(pool), dtype=bool))
        assert evaluation.heldout_utility(pool, outputs, test, refs, k) == expected
        monkeypatch.setattr(evaluation, "TEST_BLOCK", 2)
        monkeypatch.setattr(evaluation, "TRAIN_BLOCK", 3)
        assert evaluation.heldout_utility(pool, outputs, test, refs, k) == expected
        monkeypatch.undo()
    assert evaluation.heldout_utility(pool[:0], [], test, refs, k) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        evaluation.heldout_utility(pool, outputs[:-1], test, refs, k)


def test_diversity_in_blocks_equals_one_pass(monkeypatch):
    import shed_pipeline.core.evaluation as evaluation

    v = np.random.default_rng(5).normal(size=(50, 4))
    one_pass = evaluation.mean_pairwise_cosine_distance(v)
    monkeypatch.setattr(evaluation, "TRAIN_BLOCK", 7)
    assert evaluation.mean_pairwise_cosine_distance(v) == pytest.approx(one_pass, rel=1e-12)
