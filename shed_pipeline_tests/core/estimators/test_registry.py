"""The estimator registry: names, settings, requirements, and results pinned to the values the
estimators gave before they became strategies (a change of seeding or aggregation shows here)."""

import numpy as np
import pytest

import shed_pipeline.core.estimators as package
from shed_pipeline.core.estimators import ESTIMATORS, estimate
from shed_pipeline.core.strategies import StrategyError, declared_strategies
from shed_pipeline.core.utilities import CachedUtility, KNNUtility


def tiny_knn_game() -> KNNUtility:
    rng = np.random.default_rng(11)
    order = np.argsort(rng.random((4, 7)), axis=1)
    match = np.round(rng.random((4, 7)), 3)
    return KNNUtility.from_matrices(order, match, k=2)


KEYS = np.array([3, 8, 11, 20, 21, 40, 41])  # cluster ids: draws are hashed by them
PINNED = [  # (estimator, settings, values, stderr, info) at seed 5
    (
        "banzhaf_msr",
        {"samples": 40},
        [
            0.1381041666666668,
            0.057177398989898987,
            0.07694204260651638,
            0.05567833333333355,
            0.020989661654135572,
            0.002203914141414076,
            -0.023658248081841304,
        ],
        [
            0.02878137730469823,
            0.033213303679713944,
            0.032415726668683406,
            0.03700628032419009,
            0.033762278775238706,
            0.03259745854482001,
            0.03456980581071309,
        ],
        {"players_without_estimate": 0, "samples": 40},
    ),
    (
        "exact",
        {},
        [
            0.1416208333333334,
            0.060149999999999974,
            0.10058333333333332,
            0.08824583333333337,
            0.012195833333333326,
            0.08179999999999997,
            0.008029166666666695,
        ],
        None,
        {"coalitions": 128},
    ),
    (
        "knn_exact",
        {},
        [
            0.14162083333333333,
            0.06015000000000001,
            0.10058333333333334,
            0.08824583333333334,
            0.012195833333333336,
            0.08180000000000001,
            0.008029166666666667,
        ],
        None,
        {"validation_rows": 4},
    ),
    (
        "shed_grouped",
        {"group_size": 2, "permutations": 5},
        [
            0.21584999999999996,
            0.16835,
            0.13595000000000002,
            0.06642500000000004,
            0.024400000000000033,
            0.11725000000000001,
            0.01010000000000003,
        ],
        [
            0.036357261998120824,
            0.03840898983311068,
            0.05120838066176275,
            0.030239824734941825,
            0.04060220745230484,
            0.04580256543033371,
            0.04278187992596865,
        ],
        {"group_size": 2, "groups": 4, "permutations": 5},
    ),
    (
        "shed_grouped",
        {"permutations": 3},
        [
            0.16674999999999998,
            0.04016666666666665,
            0.05804166666666662,
            0.0879166666666667,
            -0.052166666666666694,
            0.06450000000000003,
            0.12741666666666673,
        ],
        [
            0.05522136638616934,
            0.07540267672574633,
            0.03908503609178703,
            0.06259807120445901,
            0.025929011886445034,
            0.07443481488300124,
            0.036708325450875684,
        ],
        {"group_size": 1, "groups": 7, "permutations": 3},
    ),
    (
        "tmc",
        {"permutations": 6, "truncation_tolerance": 0.2},
        [
            0.12547916666666667,
            0.0360625,
            0.04720833333333333,
            0.120625,
            0.042062500000000023,
            0.010208333333333328,
            0.07125000000000001,
        ],
        [
            0.05423989774624531,
            0.032920407883383414,
            0.0430951151148162,
            0.04924495003720348,
            0.01717194371763624,
            0.009318890735330947,
            0.029995688347568297,
        ],
        {"permutations": 6, "truncated_steps": 26},
    ),
    (
        "tmc",
        {"permutations": 6},
        [
            0.14891666666666661,
            0.0360625,
            0.11941666666666662,
            0.03093750000000008,
            0.04141666666666669,
            0.06141666666666665,
            0.054458333333333366,
        ],
        [
            0.04588816480293674,
            0.032920407883383414,
            0.03844017794043873,
            0.08585971858818116,
            0.017443576367290096,
            0.027894964615964753,
            0.043130038621377105,
        ],
        {"permutations": 6, "truncated_steps": 0},
    ),
    (
        "ts_chains",
        {"chain_rounds": 2, "chain_size": 3, "permutations": 3},
        [
            0.25206249999999997,
            0.15179166666666666,
            0.11449999999999999,
            0.15291666666666665,
            0.030125000000000006,
            0.14658333333333334,
            0.08883333333333336,
        ],
        [
            0.0006039870422635017,
            0.0,
            0.08862404990871395,
            0.011136931803688103,
            0.0074835467675576335,
            0.05474184997685855,
            0.013405566059994958,
        ],
        {"chain_size_max": 4, "chain_size_mean": 3.5, "chains": 4, "permutations_per_chain": 3, "rounds": 2},
    ),
    (
        "ts_chains",
        {"permutations": 2},
        [
            0.15529999999999997,
            0.07981875000000001,
            0.13686874999999998,
            0.07648125000000003,
            0.000525000000000006,
            0.083575,
            -0.03994374999999996,
        ],
        [
            0.02328517299162709,
            0.027577506473233756,
            0.029806401957570283,
            0.03554828587859405,
            0.00984249872999738,
            0.02848265343810157,
            0.02683061079776697,
        ],
        {"chain_size_max": 7, "chain_size_mean": 7.0, "chains": 10, "permutations_per_chain": 2, "rounds": 10},
    ),
]


def test_registry_lists_exactly_the_estimator_modules():
    declared = declared_strategies(package)
    assert set(declared) == set(ESTIMATORS) and len(ESTIMATORS) == 6
    assert all(ESTIMATORS[name] is s for name, s in declared.items())
    assert ESTIMATORS.names[0] == "knn_exact"  # the default first


def test_unknown_names_and_settings_fail_listing_what_exists():
    with pytest.raises(
        StrategyError,
        match="unknown estimator 'banzhaf'; choose one of knn_exact, shed_grouped, tmc, banzhaf_msr, ts_chains, exact",
    ):
        ESTIMATORS.configure("banzhaf")
    with pytest.raises(
        StrategyError, match="estimator tmc has no setting 'samples'; its settings: permutations, truncation_tolerance"
    ):
        ESTIMATORS.configure("tmc", {"samples": 3})
    with pytest.raises(StrategyError, match="estimator exact has no setting 'permutations'; its settings: none"):
        estimate("exact", tiny_knn_game(), permutations=3)


def test_knn_exact_needs_the_knn_utility_and_says_what_fits_instead():
    ESTIMATORS.check_requirements("knn_exact", utility="knn")
    for name in ESTIMATORS.names[1:]:
        ESTIMATORS.check_requirements(name, utility="probe")
    with pytest.raises(StrategyError) as e:
        ESTIMATORS.check_requirements("knn_exact", utility="probe")
    assert str(e.value).startswith(
        "estimator knn_exact needs utility knn, got 'probe' (knn_exact: the closed form of the knn utility"
    )
    assert str(e.value).endswith("with utility 'probe' choose shed_grouped, tmc, banzhaf_msr, ts_chains or exact")


@pytest.mark.parametrize(
    ("name", "settings", "values", "stderr", "info"), PINNED, ids=[f"{p[0]}-{i}" for i, p in enumerate(PINNED)]
)
def test_each_estimator_gives_its_pinned_values(name, settings, values, stderr, info):
    res = estimate(name, tiny_knn_game(), seed=5, player_keys=KEYS, **settings)
    np.testing.assert_allclose(res.values, values, rtol=1e-12, atol=1e-15)
    if stderr is None:
        assert res.stderr is None
    else:
        np.testing.assert_allclose(res.stderr, stderr, rtol=1e-12, atol=1e-15)
    assert res.info == info


def test_knn_exact_reads_the_utility_behind_the_counting_wrapper():
    counted = CachedUtility(tiny_knn_game())
    res = ESTIMATORS["knn_exact"].run(counted, ESTIMATORS["knn_exact"].settings(), 0, None)
    np.testing.assert_allclose(res.values, estimate("exact", tiny_knn_game()).values, atol=1e-12)
    assert counted.evaluations == 0 and counted.coalitions == 0


def test_settings_defaults_are_the_documented_ones():
    assert {name: ESTIMATORS[name].defaults() for name in ESTIMATORS} == {
        "knn_exact": {},
        "shed_grouped": {"permutations": 20, "group_size": None},
        "tmc": {"permutations": 20, "truncation_tolerance": 0.0},
        "banzhaf_msr": {"samples": 1000},
        "ts_chains": {"permutations": 20, "chain_size": None, "chain_rounds": 10},
        "exact": {},
    }


@pytest.mark.parametrize(
    ("name", "settings"),
    [(p[0], p[1]) for p in PINNED if p[0] != "knn_exact"],
    ids=[f"{p[0]}-{i}" for i, p in enumerate(PINNED) if p[0] != "knn_exact"],
)
def test_declared_calls_bound_the_utility_calls_and_feed_one_progress_line_per_run(name, settings):
    """`calls` is the progress total: never below what the estimator asks for, and exact unless the
    estimator truncates; the closing line gives the count asked for."""
    from shed_pipeline.core.progress import Progress

    strategy, configured = ESTIMATORS.configure(name, settings)
    bound = strategy.calls(7, configured)
    lines: list[str] = []
    progress = Progress(bound, name, lines.append, unit="coalitions", every_s=1e9)
    counted = CachedUtility(tiny_knn_game(), progress=progress)
    strategy.run(counted, configured, 5, KEYS)
    progress.finish()
    asked = counted.evaluations + counted.cache_hits
    assert progress.done == asked
    if settings.get("truncation_tolerance"):
        assert asked < bound
    else:
        assert asked == bound
    assert len(lines) == 1 and lines[0].startswith(f"{name}: {asked}/{asked} coalitions (") and "done in" in lines[0]


def test_knn_exact_declares_no_calls():
    assert ESTIMATORS["knn_exact"].calls is None
