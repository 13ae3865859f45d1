"""The probe utility against closed-form oracles, and its ability to find rows with wrong outputs."""

import numpy as np
import pytest

from shed_pipeline.core.estimators import exact_shapley
from shed_pipeline.core.utilities.probe import PCABasis, ProbeSettings, ProbeUtility, ridge_fit


def task_data(n, rng, centres_x, centres_y, noise=1.0):
    t = rng.integers(len(centres_x), size=n)
    return (
        t,
        centres_x[t] + noise * rng.normal(size=(n, centres_x.shape[1])),
        centres_y[t] + noise * rng.normal(size=(n, centres_y.shape[1])),
    )


def test_ridge_fit_matches_augmented_least_squares():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 3))
    # Ridge = least squares on [X; sqrt(l) I] W = [Y; 0].
    oracle = np.linalg.lstsq(np.vstack([x, np.sqrt(2.0) * np.eye(5)]), np.vstack([y, np.zeros((5, 3))]), rcond=None)[0]
    np.testing.assert_allclose(ridge_fit(x, y, 2.0), oracle, atol=1e-10)


def test_pca_basis_whitens_its_data_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 8)) @ rng.normal(size=(8, 8))
    b = PCABasis.fit(x, 4)
    z = b.transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(z.T), np.eye(4), atol=1e-8)  # unit variance, uncorrelated
    np.testing.assert_array_equal(PCABasis.fit(x.copy(), 4).components, b.components)
    assert (b.components[np.abs(b.components).argmax(0), np.arange(4)] > 0).all()  # sign convention
    with pytest.raises(ValueError, match="two rows"):
        PCABasis.fit(x[:1], 4)


def test_value_is_the_validation_r2_of_the_coalition_regression():
    rng = np.random.default_rng(2)
    px, py, vx, vy = (
        rng.normal(size=(6, 5)),
        rng.normal(size=(6, 4)),
        rng.normal(size=(20, 5)),
        rng.normal(size=(20, 4)),
    )
    s = ProbeSettings(dims=3, ridge=0.5)
    u = ProbeUtility(px, py, vx, vy, s)
    assert u.value(np.zeros(6, dtype=bool)) == 0.0  # the mean response: R^2 = 0 by definition
    mask = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    bx, by = PCABasis.fit(vx, 3), PCABasis.fit(vy, 3)
    X, Y = bx.transform(px[mask]), by.transform(py[mask])
    pred = bx.transform(vx) @ np.linalg.solve(X.T @ X + 0.5 * np.eye(3), X.T @ Y)
    target = by.transform(vy)
    assert u.value(mask) == pytest.approx(1 - ((target - pred) ** 2).sum() / (target**2).sum(), abs=1e-12)


def test_rows_with_another_tasks_output_get_the_lowest_shapley_values():
    found = 0
    for seed in range(10):  # ten random worlds of 4 tasks, 10 players, 2 with another task's output
        rng = np.random.default_rng(seed)
        cx, cy = 2 * rng.normal(size=(4, 12)), 2 * rng.normal(size=(4, 12))
        t, px, py = task_data(10, rng, cx, cy)
        _, vx, vy = task_data(80, rng, cx, cy)
        bad = [1, 6]
        for i in bad:  # the output of the next task: a fluent answer to the wrong question
            py[i] = cy[(t[i] + 1) % 4] + rng.normal(size=12)
        u = ProbeUtility(px, py, vx, vy, ProbeSettings(dims=6, ridge=5.0))
        values = exact_shapley(u).values
        found += set(np.argsort(values)[:2]) == set(bad)
        clean = np.ones(10, dtype=bool)
        clean[bad] = False
        assert u.value(clean) > u.value(np.ones(10, dtype=bool))
    assert found >= 8  # both corrupted rows valued lowest (measured: 9 of 10 seeds)


def test_bad_inputs_are_refused():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="two validation rows"):
        ProbeUtility(x, x, x[:1], x[:1])
    with pytest.raises(ValueError, match="differ in count"):
        ProbeUtility(x, x[:2], x, x)
    with pytest.raises(ValueError, match="ridge"):
        ProbeUtility(x, x, x, x, ProbeSettings(ridge=0))
    with pytest.raises(ValueError, match="shape"):
        ProbeUtility(np.ones((3, 4)), np.ones((3, 4)), np.eye(4), np.eye(4)).value(np.ones(2, dtype=bool))


def test_pca_keeps_only_directions_the_validation_rows_span():
    rng = np.random.default_rng(4)
    few = rng.normal(size=(5, 20)) * 3000  # 5 rows span at most 4 centred directions
    b = PCABasis.fit(few, 16)
    assert b.components.shape == (20, 4)
    assert np.abs(b.transform(rng.normal(size=(3, 20)) * 3000)).max() < 100  # nothing divided by ~0
