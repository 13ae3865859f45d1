"""Arms against the random arms: differences, z and paired bootstrap intervals."""

import numpy as np
import pytest

from shed_pipeline.core.evaluation.comparison import BENCHMARKS_MEAN, compare, lineage_rows


def rec(arm, bench, scores, replicate=0, metric=None):
    metric = metric or ("loglik_per_token" if bench == "test_split" else "accuracy")
    return {
        "arm": arm,
        "replicate": replicate,
        "benchmark": bench,
        "metric": metric,
        "value": float(np.mean(scores)),
        "scores": list(scores),
    }


def test_hand_example_exact_values():
    records = [
        rec("random", "test_split", [-2.0, -3.0], 0),
        rec("random", "test_split", [-1.0, -2.0], 1),  # seed means -2.5, -1.5: mean -2, sample std 0.7071
        rec("curated", "test_split", [-1.0, -1.5]),  # mean -1.25; per row minus random: [0.5, 1.0]
        rec("random", "quiz", [1, 0, 0, 1], 0),
        rec("random", "quiz", [1, 1, 0, 0], 1),  # seed means 0.5, 0.5: no spread
        rec("curated", "quiz", [1, 1, 1, 0]),
        rec("random", "trivia", [0, 0], 0),
        rec("random", "trivia", [1, 1], 1),  # seed means 0, 1
        rec("curated", "trivia", [1, 0]),
    ]
    rows = {r["benchmark"]: r for r in compare(records, bootstrap=4000, seed=1)}
    t = rows["test_split"]
    assert (
        t["arm_mean"] == pytest.approx(-1.25)
        and t["random_mean"] == pytest.approx(-2.0)
        and t["difference"] == pytest.approx(0.75)
    )
    assert (
        t["random_std"] == pytest.approx(2**0.5 / 2)
        and t["z"] == pytest.approx(0.75 / (2**0.5 / 2))
        and t["n"] == 2
        and t["seeds"] == 2
    )
    # Two paired differences, 0.5 and 1.0: a resampled mean is 0.5, 0.75 or 1.0, so the interval is [0.5, 1.0].
    assert (t["ci_low"], t["ci_high"]) == (0.5, 1.0)
    q = rows["quiz"]
    assert q["difference"] == pytest.approx(0.25) and q["random_std"] == 0 and q["z"] is None
    m = rows[BENCHMARKS_MEAN]  # mean over quiz and trivia (not the test split)
    assert m["arm_mean"] == pytest.approx((0.75 + 0.5) / 2) and m["random_mean"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["difference"] == pytest.approx((q["difference"] + rows["trivia"]["difference"]) / 2)
    assert m["random_std"] == pytest.approx(np.std([(0.5 + 0) / 2, (0.5 + 1) / 2], ddof=1)) and m["n"] == 6
    assert q["ci_low"] <= q["difference"] <= q["ci_high"] and m["ci_low"] <= m["difference"] <= m["ci_high"]
    assert [r["arm"] for r in compare(records, 10)] == ["curated"] * 4 and compare(
        [r for r in records if r["arm"] != "random"]
    ) == []
    assert compare(records, 500, seed=3) == compare(records, 500, seed=3)  # seeded
    assert set(lineage_rows([t])[0]) == {
        "arm",
        "benchmark",
        "metric",
        "arm_mean",
        "random_mean",
        "random_std",
        "difference",
        "ci_low",
        "ci_high",
        "z",
        "n",
    }


def test_interval_covers_a_known_difference_at_its_nominal_rate():
    """Items with their own difficulty, 5 random seeds, an arm better by delta with its own noise:
    the 95% interval of the paired difference covers delta in 95% +- 3% of 400 experiments."""
    rng = np.random.default_rng(0)
    delta, n, covered = 0.3, 80, 0
    for rep in range(400):
        difficulty = rng.normal(0, 1, n)
        records = [rec("random", "test_split", difficulty + rng.normal(0, 0.5, n), s) for s in range(5)]
        records.append(rec("arm", "test_split", difficulty + delta + rng.normal(0, 0.5, n)))
        (row,) = compare(records, bootstrap=400, seed=rep)
        covered += row["ci_low"] <= delta <= row["ci_high"]
    assert 0.92 <= covered / 400 <= 0.98


def test_arms_must_share_items():
    records = [
        rec("random", "test_split", [-1.0, -2.0], 0),
        rec("random", "test_split", [-1.5, -2.5], 1),
        rec("curated", "test_split", [-1.0]),
    ]
    with pytest.raises(ValueError, match="same items"):
        compare(records)


def test_head_to_head_pairs_two_arms_item_by_item():
    from shed_pipeline.core.evaluation.comparison import head_to_head

    records = [
        rec("random", "test_split", [-2.0, -3.0], 0),
        rec("random", "test_split", [-1.0, -2.0], 1),  # seed means -2.5, -1.5: sample std 0.7071
        rec("shed", "test_split", [-1.0, -1.5]),
        rec("longest", "test_split", [-1.5, -2.5]),  # per row shed - longest: [0.5, 1.0]
        rec("random", "quiz", [1, 0, 0, 1], 0),
        rec("random", "quiz", [1, 1, 0, 1], 1),
        rec("shed", "quiz", [1, 1, 1, 0]),
        rec("longest", "quiz", [1, 0, 1, 0]),  # differences [0, 1, 0, 0]
    ]
    rows = {r["benchmark"]: r for r in head_to_head(records, "shed", "longest", bootstrap=4000, seed=1)}
    t = rows["test_split"]
    assert (t["arm_mean"], t["other_mean"], t["difference"]) == (-1.25, -2.0, 0.75) and (t["ci_low"], t["ci_high"]) == (
        0.5,
        1.0,
    )
    assert t["random_std"] == pytest.approx(2**0.5 / 2) and t["z"] == pytest.approx(0.75 / (2**0.5 / 2)) and t["n"] == 2
    q = rows["quiz"]
    assert q["difference"] == pytest.approx(0.25) and q["ci_low"] == 0.0 and 0.25 <= q["ci_high"] <= 0.75
    m = rows[BENCHMARKS_MEAN]  # one task: the same as it
    assert m["difference"] == pytest.approx(0.25) and (m["ci_low"], m["ci_high"]) == (q["ci_low"], q["ci_high"])
    swapped = {r["benchmark"]: r for r in head_to_head(records, "longest", "shed", bootstrap=4000, seed=1)}
    assert swapped["test_split"]["difference"] == -0.75 and (
        swapped["test_split"]["ci_low"],
        swapped["test_split"]["ci_high"],
    ) == (-1.0, -0.5)
    with pytest.raises(ValueError, match="no arm 'ifd' in the records; arms: shed, longest"):
        head_to_head(records, "shed", "ifd")
    with pytest.raises(ValueError, match="must share the same items"):
        head_to_head([*records[:-1], rec("longest", "quiz", [1, 0])], "shed", "longest")
