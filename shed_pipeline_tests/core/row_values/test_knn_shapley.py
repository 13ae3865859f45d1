"""knn_shapley against Shapley's definition (every coalition, KNNUtility as the game) and against
the knn_exact estimator, whatever the block size."""

import itertools
import math

import numpy as np
import polars as pl
import pytest

from shed_pipeline.core.estimators.knn_exact import knn_shapley
from shed_pipeline.core.row_values import ROW_VALUES, RowValueInputs, compute_row_values
from shed_pipeline.core.row_values.knn_shapley import TokenSets, knn_shapley_values, order_by_similarity
from shed_pipeline.core.text_match import token_f1_matrix
from shed_pipeline.core.utilities import KNNUtility

WORDS = "paris berlin the capital red blue sky green one two three a cat".split()


def unit(rng, n, d=6):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def texts(rng, n):
    return [" ".join(rng.choice(WORDS, size=rng.integers(0, 4))) for _ in range(n)]


def brute_shapley(utility: KNNUtility) -> np.ndarray:
    """phi_i = sum over S not holding i of |S|!(n-|S|-1)!/n! (U(S + i) - U(S))."""
    n = utility.n_players
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                mask = np.zeros(n, dtype=bool)
                mask[list(s)] = True
                without = utility.value(mask)
                mask[i] = True
                phi[i] += w * (utility.value(mask) - without)
    return phi


@pytest.mark.parametrize("n,k", [(6, 1), (6, 2), (7, 3), (4, 5), (5, 5)])
def test_equals_shapley_by_definition_on_tiny_games(n, k):
    rng = np.random.default_rng(n * 10 + k)
    players, queries = unit(rng, n), unit(rng, 3)
    outputs, refs = texts(rng, n), texts(rng, 3)
    expect = brute_shapley(KNNUtility(players, outputs, queries, refs, k=k))
    got = knn_shapley_values(players, outputs, queries, refs, k=k)
    np.testing.assert_allclose(got, expect, atol=1e-12)
    # Efficiency: the values add up to U(all players) (U(empty) = 0).
    assert got.sum() == pytest.approx(KNNUtility(players, outputs, queries, refs, k=k).value(np.ones(n, dtype=bool)))


def test_ties_in_similarity_go_to_the_lower_index_as_in_the_utility():
    rng = np.random.default_rng(3)
    base = unit(rng, 3)
    players = np.vstack([base, base])  # every vector twice: exact ties
    outputs, queries, refs = texts(rng, 6), unit(rng, 2), texts(rng, 2)
    expect = brute_shapley(KNNUtility(players, outputs, queries, refs, k=2))
    np.testing.assert_allclose(knn_shapley_values(players, outputs, queries, refs, k=2), expect, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("block_elements", [1, 300, 1 << 22])
def test_equals_the_knn_exact_estimator_in_any_block_size_and_thread_count(block_elements, threads):
    rng = np.random.default_rng(7)
    players, queries = unit(rng, 150).astype(np.float32), unit(rng, 23).astype(np.float32)
    outputs, refs = texts(rng, 150), texts(rng, 23)
    expect = knn_shapley(KNNUtility(players, outputs, queries, refs, k=5)).values
    got = knn_shapley_values(players, outputs, queries, refs, k=5, block_elements=block_elements, threads=threads)
    np.testing.assert_array_equal(got, expect)  # bit for bit: blocks are summed in order whatever the threads


@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_the_packed_key_sort_is_a_stable_argsort_of_the_rounded_similarities(scale):
    rng = np.random.default_rng(2)
    sim = np.round(rng.uniform(-1, 1, size=(7, 5000)), 12) * scale  # scale 1e6: too large to pack, the fallback
    sim[:, 100:400] = sim[:, :300]  # exact ties, far apart
    sim[:, 4000:] = np.round(sim[:, 4000:], 2)  # many ties among themselves
    sim[0] = 0.0  # a row of nothing but ties
    sim[1, :10] = -1.0 * scale
    expect = np.argsort(-sim, axis=1, kind="stable")
    np.testing.assert_array_equal(order_by_similarity(sim), expect)
    with_nan = sim.copy()
    with_nan[2, 7] = np.nan  # not finite: the fallback, which sorts it as the stable argsort does
    np.testing.assert_array_equal(order_by_similarity(with_nan), np.argsort(-with_nan, axis=1, kind="stable"))


def test_token_sets_give_text_match_f1_bit_for_bit():
    rng = np.random.default_rng(5)
    answers = texts(rng, 40) + ["", "zebra only here"]
    refs = texts(rng, 9) + ["", "unknown words", "paris zebra"]
    np.testing.assert_array_equal(TokenSets(answers).f1(refs), token_f1_matrix(refs, answers))


def test_strategy_values_the_pool_against_the_first_validation_rows_by_id():
    rng = np.random.default_rng(11)
    pool = pl.DataFrame(
        {
            "row_id": [f"p{i}" for i in range(30)],
            "output": texts(rng, 30),
            "embedding": unit(rng, 30).astype(np.float32),
        }
    )
    val = pl.DataFrame(
        {
            "row_id": [f"v{i:02d}" for i in range(12)][::-1],
            "output": texts(rng, 12),
            "embedding": unit(rng, 12).astype(np.float32),
        }
    )
    frame, stats = compute_row_values(
        ["knn_shapley"],
        {"knn_shapley": ROW_VALUES["knn_shapley"].configure({"k": 3, "validation_rows": 5})},
        RowValueInputs(pool, val),
    )
    first = val.sort("row_id").head(5)
    expect = knn_shapley_values(
        pool["embedding"].to_numpy(),
        pool["output"].to_list(),
        first["embedding"].to_numpy(),
        first["output"].to_list(),
        k=3,
    )
    assert frame["row_id"].to_list() == pool["row_id"].to_list() and set(frame["kind"]) == {"knn_shapley"}
    np.testing.assert_array_equal(frame["value"].to_numpy(), expect)
    assert stats["knn_shapley"]["rows"] == 30 and stats["knn_shapley"]["min"] == expect.min()


def test_bad_input_gets_a_clear_error():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least one validation row"):
        knn_shapley_values(unit(rng, 3), ["a", "b", "c"], np.zeros((0, 6)), [], k=2)
    with pytest.raises(ValueError, match="k must be at least 1"):
        knn_shapley_values(unit(rng, 3), ["a", "b", "c"], unit(rng, 1), ["a"], k=0)
    with pytest.raises(ValueError, match="unknown row value 'shapely'; choose one of knn_shapley, ifd"):
        compute_row_values(["shapely"], {}, RowValueInputs(pl.DataFrame(), pl.DataFrame()))


def test_each_kind_declares_the_text_columns_it_reads():
    from shed_pipeline.core.row_values import text_columns

    assert text_columns(["knn_shapley"]) == ["output"]  # a million prompts stay out of the join
    assert text_columns(["ifd", "knn_shapley"]) == ["instruction", "input", "output", "messages"]
    assert text_columns([]) == []
