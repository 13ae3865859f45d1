import itertools

import numpy as np
import pytest

from shed_pipeline.core.text_match import token_f1, token_f1_matrix
from shed_pipeline.core.utilities import CachedUtility, KNNUtility, knn


def brute_knn_value(sim: np.ndarray, match: np.ndarray, k: int, members: list[int]) -> float:
    """U(S) by its definition, one validation row at a time."""
    if not members:
        return 0.0
    total = 0.0
    for v in range(sim.shape[0]):
        nearest = sorted(members, key=lambda j: (-sim[v, j], j))[:k]
        total += sum(match[v, j] for j in nearest) / k
    return total / sim.shape[0]


def test_token_f1_examples():
    assert token_f1("Paris", "paris") == 1.0
    assert token_f1("the red box", "a red box") == pytest.approx(2 * 2 / 6)
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0


def test_token_f1_matrix_equals_pairwise():
    q = ["the cat sat", "", "Paris is big", "one two three"]
    a = ["a cat", "paris", "", "three two one one", "big big cat"]
    m = token_f1_matrix(q, a)
    assert m.shape == (4, 5)
    for i, j in itertools.product(range(4), range(5)):
        assert m[i, j] == pytest.approx(token_f1(a[j], q[i]))


def test_knn_utility_equals_its_definition_on_every_coalition():
    rng = np.random.default_rng(1)
    players = rng.normal(size=(7, 5))
    players /= np.linalg.norm(players, axis=1, keepdims=True)
    queries = rng.normal(size=(4, 5))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    outs = ["red", "blue", "red box", "green", "blue box", "red", "yellow"]
    refs = ["red", "blue box", "green tea", "yellow red"]
    u = KNNUtility(players, outs, queries, refs, k=3)
    sim = queries @ players.T
    match = token_f1_matrix(refs, outs)
    for r in range(8):
        for s in itertools.combinations(range(7), r):
            mask = np.zeros(7, bool)
            mask[list(s)] = True
            assert u.value(mask) == pytest.approx(brute_knn_value(sim, match, 3, list(s)))
    assert u.value(np.zeros(7, bool)) == 0.0


def test_counting_utility_counts_and_reuses():
    u = CachedUtility(KNNUtility.from_matrices(np.array([[0, 1, 2]]), np.array([[1.0, 0.5, 0.0]]), k=1))
    m = np.array([True, False, True])
    assert u.value(m) == 1.0 and u.value(m.copy()) == 1.0
    assert (u.evaluations, u.cache_hits) == (1, 1)
    with pytest.raises(ValueError):
        u.value(np.ones(4, bool))


def test_knn_utility_rejects_empty_validation():
    with pytest.raises(ValueError, match="validation"):
        KNNUtility(np.ones((2, 3)), ["a", "b"], np.ones((0, 3)), [], k=1)


def test_value_depends_only_on_the_coalition_not_on_the_other_players():
    """A value cached in one run must equal, bit for bit, the value a run with other players computes."""
    rng = np.random.default_rng(11)
    players = rng.normal(size=(300, 16)).astype(np.float32)
    outputs = [" ".join(rng.choice(["a", "b", "c", "d", "e", "f"], size=3)) for _ in range(300)]
    queries = rng.normal(size=(40, 16)).astype(np.float32)
    refs = [" ".join(rng.choice(["a", "b", "c", "d", "e", "f"], size=3)) for _ in range(40)]
    full = KNNUtility(players, outputs, queries, refs, k=5)
    keep = np.array([i for i in range(300) if i not in (7, 150)])  # two players gone (retired clusters)
    fewer = KNNUtility(players[keep], [outputs[i] for i in keep], queries, refs, k=5)
    for _ in range(300):
        s = rng.random(len(keep)) < rng.random()
        mask = np.zeros(300, dtype=bool)
        mask[keep[s]] = True
        assert fewer.value(s) == full.value(mask)  # exact equality, not approx


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
    pool, _, test, _ = _ties_game(2)
    dense = np.argsort(-np.round(test @ pool.T, 12), axis=1, kind="stable")[:, : min(k, len(pool))]
    for blocks in [(1, 1), (3, 5), (4, 7), (1024, 16384)]:
        np.testing.assert_array_equal(knn.nearest_rows(pool, test, k, *blocks), dense)


@pytest.mark.parametrize("k", [1, 3, 5, 30])
def test_heldout_utility_from_nearest_rows_equals_the_dense_knn_utility_bit_for_bit(k, monkeypatch):
    for seed in range(4):
        pool, outputs, test, refs = _ties_game(seed)
        dense = KNNUtility(pool, outputs, test, refs, k=k)
        expected = dense.value(np.ones(len(pool), dtype=bool))
        assert knn.heldout_utility(pool, outputs, test, refs, k) == expected
        monkeypatch.setattr(knn, "TEST_BLOCK", 2)
        monkeypatch.setattr(knn, "TRAIN_BLOCK", 3)
        assert knn.heldout_utility(pool, outputs, test, refs, k) == expected
        monkeypatch.undo()
    assert knn.heldout_utility(pool[:0], [], test, refs, k) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        knn.heldout_utility(pool, outputs[:-1], test, refs, k)


@pytest.mark.parametrize("k", [1, 3, 30])
def test_a_game_too_large_for_dense_matrices_gives_the_same_values_without_building_them(k, monkeypatch):
    """Above DENSE_MAX_ELEMENTS a coalition's value comes from its members' nearest rows in blocks
    (bounded memory at 50,000 proxies): bit-identical to the dense matrices' value."""
    pool, outputs, test, refs = _ties_game(3)
    dense = KNNUtility(pool, outputs, test, refs, k=k)
    rng = np.random.default_rng(k)
    coalitions = [np.ones(len(pool), bool), np.zeros(len(pool), bool)] + [
        rng.random(len(pool)) < p for p in (0.1, 0.5, 0.9)
    ]
    expected = [dense.value(c) for c in coalitions]
    monkeypatch.setattr(knn, "DENSE_MAX_ELEMENTS", len(pool) * len(test) - 1)
    monkeypatch.setattr(knn, "TRAIN_BLOCK", 4)
    large = KNNUtility(pool, outputs, test, refs, k=k)
    assert [large.value(c) for c in coalitions] == expected
    assert not large.dense_built
