"""The method registry, `curate`, and the outputs of SHED's methods and random pinned to what the
code gave before methods became strategies (a change of seeding, order or reasons shows here)."""

import hashlib
import json

import numpy as np
import pytest

import shed_pipeline.core.selection as package
from shed_pipeline.core.selection import METHODS, curate, target_size
from shed_pipeline.core.strategies import StrategyError, declared_strategies
from shed_pipeline_tests.core.selection.inputs import make_inputs, run, unit_vectors


def test_registry_lists_exactly_the_method_modules():
    declared = declared_strategies(package)
    assert (
        set(METHODS.names)
        == set(declared)
        == {"qocs", "qwcs", "coverage", "random", "stratified", "longest", "ifd", "kcenter"}
    )
    assert all(METHODS[name] is s for name, s in declared.items())
    with pytest.raises(StrategyError, match="unknown method 'best'; choose one of qocs, qwcs, coverage, random"):
        METHODS["best"]
    with pytest.raises(
        StrategyError, match="method qwcs has no setting 'beta'; its settings: member_order, temperature"
    ):
        METHODS.configure("qwcs", {"beta": 1.0})


def pinned_fixture():
    rng = np.random.default_rng(2024)
    sizes = rng.integers(1, 25, 30)
    ids = [int(3 * c + 1) for c in range(30)]
    members, k = [], 0
    for s in sizes:
        members.append([f"row{k + j:04d}" for j in range(s)])
        k += s
    scores = [float(round(x, 3)) for x in rng.normal(0.01, 0.02, 30)]
    return ids, scores, members


# sha256 of [[row_id, cluster_id, draw_order, reason], ...] from the code before this registry
# (shed_pipeline.core.sampling.select at 7f0c254) on pinned_fixture(): 350 rows in 30 clusters.
PINNED = [
    ("qocs", 40, 0, None, "2d2f55d1d497560f"),
    ("qocs", 200, 0, None, "e64fec5fcf7ea3f2"),
    ("qwcs", 40, 0, None, "d84eb0125e27d0cb"),
    ("qwcs", 300, 7, None, "cbb43000db44d65b"),
    ("qwcs", 120, 3, 0.001, "824cc918bf981ee6"),
    ("qwcs", 100, 1, 100.0, "37469c98e4646702"),
    ("random", 40, 0, None, "4ac1213de3108116"),
    ("random", 150, 9, None, "9bc19f3d81d6e756"),
]


@pytest.mark.parametrize("method,n,seed,temperature,digest", PINNED)
def test_shed_methods_and_random_give_the_same_rows_order_and_reasons_as_before(method, n, seed, temperature, digest):
    ids, scores, members = pinned_fixture()
    settings = {"temperature": temperature} if temperature is not None else {}
    sel = run(method, make_inputs(ids, scores, members, n=n, seed=seed), **settings)
    got = hashlib.sha256(
        json.dumps([[s.row_id, s.cluster_id, s.draw_order, s.reason] for s in sel]).encode()
    ).hexdigest()[:16]
    assert got == digest


def test_target_size():
    assert target_size(8000, 0.1, None) == 800
    assert target_size(8000, 0.1, 50) == 50
    assert target_size(5, 0.01, None) == 1
    for bad in [(100, 0.0, None), (100, 1.5, None), (100, None, 0), (100, None, 101)]:
        with pytest.raises(ValueError):
            target_size(*bad)


def twin_pool():
    """Two clusters of 4 rows; rows b and f are near-copies of a and e."""
    x = unit_vectors(8, 6, 3)
    x[1] = x[0] + 0.01
    x[5] = x[4] - 0.01
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return make_inputs([0, 1], [0.2, 0.1], [list("abcd"), list("efgh")], vectors=x, outputs=["x" * i for i in range(8)])


def test_curate_sizes_the_target_before_dedup_and_runs_the_method():
    result = curate(twin_pool(), "qocs", fraction=0.5)
    assert result.target == 4 and [s.row_id for s in result.selections] == list("abcd") and not result.near_duplicates
    deduped = curate(twin_pool(), "qocs", {"member_order": "source"}, fraction=0.5, dedup_threshold=0.95)
    assert [(d.row_id, d.kept_row_id, d.cluster_id) for d in deduped.near_duplicates] == [("b", "a", 0), ("f", "e", 1)]
    assert deduped.target == 4 and deduped.pool_rows == 8 and deduped.rows_after_dedup == 6
    assert [s.row_id for s in deduped.selections] == ["a", "c", "d", "e"]
    whole = curate(twin_pool(), "longest", fraction=1.0, dedup_threshold=0.95)
    assert whole.target == 6  # a fraction is cut to the rows left
    with pytest.raises(ValueError, match="size 7 exceeds the 6 rows left after near-duplicate removal \\(2 removed\\)"):
        curate(twin_pool(), "random", size=7, dedup_threshold=0.95)
    assert len(curate(twin_pool(), "random", every_row=True).selections) == 8


def test_curate_checks_a_method_needs_before_any_work():
    with pytest.raises(StrategyError, match="method ifd needs row_values ifd \\(got none\\)"):
        curate(twin_pool(), "ifd")
    with pytest.raises(ValueError, match="per-row values 'knn_shapley' were not computed"):
        curate(twin_pool(), "qocs", {"member_order": "knn_shapley"})
    with pytest.raises(ValueError, match="per-row values 'knn_shapley' were not computed"):
        curate(twin_pool(), "qocs", dedup_threshold=0.9, dedup_keep="knn_shapley")
