"""The LM evaluation arms on a tiny Llama: plan, run, cache, summary and verdict."""

import math
import re

import numpy as np
import pytest

from shed_pipeline.core import lm
from shed_pipeline.core.evaluation.benchmarks import ChoiceItem
from shed_pipeline.core.evaluation.lm_arms import (
    FinetuneBudget,
    TrainingPlan,
    evaluate_arms,
    plan_arms,
    steps_for_epochs,
    summarize,
)
from shed_pipeline_tests.tiny_lm import build_tiny_lm


def test_plan_arms_draws_same_size_random_subsets_per_seed():
    arms = plan_arms(50, [3, 1, 4], [7, 8, 9], include_full_pool=True, baselines={"longest": [5, 6, 7]})
    assert [a.name for a in arms] == ["base", "curated", "longest", "random", "random", "random", "full_pool"]
    assert (
        arms[0].rows == ()
        and arms[1].rows == (3, 1, 4)
        and arms[2].rows == (5, 6, 7)
        and arms[-1].rows == tuple(range(50))
    )
    rand = arms[3:6]
    assert all(len(a.rows) == 3 and len(set(a.rows)) == 3 for a in rand) and [a.replicate for a in rand] == [7, 8, 9]
    assert (
        plan_arms(50, [3, 1, 4], [7], include_full_pool=False)[2].rows == rand[0].rows
    )  # a seed always draws the same rows
    with pytest.raises(ValueError, match="empty"):
        plan_arms(50, [], [1], include_full_pool=False)
    with pytest.raises(ValueError, match="arm of its own"):
        plan_arms(50, [1], [1], include_full_pool=False, baselines={"random": [2]})
    assert steps_for_epochs(3, 100, 16) == 19 and steps_for_epochs(0.01, 10, 8) == 1


def test_training_plan_gives_each_arm_its_epochs_or_a_fixed_budget():
    plan = TrainingPlan(epochs=1.5, batch_size=8)
    assert (
        [plan.budget(n).steps for n in (1, 8, 10, 160, 1600)]
        == [math.ceil(1.5 * n / 8) for n in (1, 8, 10, 160, 1600)]
        == [1, 2, 2, 30, 300]
    )
    assert plan.describe() == "1.5 epochs over each arm's rows (ceil(1.5 x rows / 8) steps)"
    fixed = TrainingPlan(steps=12)
    assert {fixed.budget(n).steps for n in (1, 160, 1600)} == {
        12
    } and fixed.describe() == "fixed budget: 12 steps of 8 rows per arm"
    assert TrainingPlan.fixed(FinetuneBudget(steps=5, lr=0.1)).budget(99) == FinetuneBudget(steps=5, lr=0.1)
    for bad in (dict(epochs=0), dict(steps=0)):
        with pytest.raises(ValueError, match="must be"):
            TrainingPlan(**bad)


def test_summary_arithmetic():
    recs = [
        {"arm": a, "replicate": r, "subset_size": 2, "benchmark": "b", "metric": "accuracy", "value": v}
        for a, r, v in [("curated", 0, 0.6), ("random", 1, 0.4), ("random", 2, 0.6), ("full_pool", 0, 0.55)]
    ]
    summary = summarize(recs)
    rnd = next(s for s in summary if s["arm"] == "random")
    assert (
        rnd["mean"] == pytest.approx(0.5) and rnd["std"] == pytest.approx(0.1 * 2**0.5) and rnd["n"] == 2
    )  # sample std


POOL_P = ["the capital of france is", "what colour sky", "a b c", "d e f"]
POOL_T = ["paris", "blue", "d e f", "g"]
BENCH = {
    "quiz": [
        ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
        ChoiceItem("what colour sky", ("green", "blue"), 1),
    ]
}
TEST_P, TEST_T = ["the capital of france is", "what colour sky"], ["paris", "sky blue"]


def test_arms_trained_by_epochs_are_deterministic_and_cached_with_their_item_scores(tmp_path):
    model, tok = lm.load_lm(build_tiny_lm(tmp_path / "tiny"))
    arms = plan_arms(4, [0, 1], [0, 1], include_full_pool=True)
    plan = TrainingPlan(epochs=2, lr=1e-2, rank=2, alpha=4, batch_size=2, max_tokens=32)
    logs, done = [], []
    first = evaluate_arms(
        model,
        tok,
        arms,
        pool_prompts=POOL_P,
        pool_targets=POOL_T,
        test_prompts=TEST_P,
        test_targets=TEST_T,
        benchmarks=BENCH,
        plan=plan,
        log=logs.append,
        cache_dir=tmp_path / "cache",
        model_key="tiny",
        on_arm_done=lambda *a: done.append(a),
    )
    assert len(first) == len(arms) * 2 and {r["benchmark"] for r in first} == {"test_split", "quiz"}
    # Epochs over each arm's own rows: 2 x 2 rows / 2 = 2 steps for the subsets, 2 x 4 / 2 = 4 for the full pool.
    assert {(r["arm"], r["subset_size"], r["steps"]) for r in first} == {
        ("base", 0, 0),
        ("curated", 2, 2),
        ("random", 2, 2),
        ("full_pool", 4, 4),
    }
    for r in first:  # per row / per item scores, in order; the value is their mean
        assert len(r["scores"]) == 2 and r["value"] == pytest.approx(np.mean(r["scores"]))
        assert r["metric"] != "accuracy" or set(r["scores"]) <= {0.0, 1.0}
    labels = ["base", "curated", "random (seed 0)", "random (seed 1)", "full_pool"]
    assert done == [(k, 5, label, False) for k, label in enumerate(labels, 1)]  # once per arm, in order
    # A line per arm, k of M, and each long step's done/total (quick here: the end line only).
    lines = lambda arm: [re.sub(r" \(.*\)$| in \d+s$", "", m) for m in logs if m.startswith(arm)]  # noqa: E731 (without rates and times)
    assert lines("evaluation arm 1/5 base") == [
        "evaluation arm 1/5 base: the base model, scored",
        "evaluation arm 1/5 base: test_split: 2/2 sequences",
        "evaluation arm 1/5 base: quiz: 5/5 sequences",
        "evaluation arm 1/5 base: done",
    ]
    assert lines("evaluation arm 5/5 full_pool") == [
        "evaluation arm 5/5 full_pool: fine-tune on 4 rows, then score",
        "evaluation arm 5/5 full_pool: LoRA fine-tune: 4/4 steps",
        "evaluation arm 5/5 full_pool: test_split: 2/2 sequences",
        "evaluation arm 5/5 full_pool: quiz: 5/5 sequences",
        "evaluation arm 5/5 full_pool: done",
    ]
    assert re.fullmatch(
        r"evaluation: 1/5 arms \(~\d+s left: 10 fine-tune steps, 4 arms to score\)",
        next(m for m in logs if m.startswith("evaluation: 1/5")),
    )
    assert logs[-1] == "evaluation: 5/5 arms"
    base = next(r for r in first if r["arm"] == "base" and r["benchmark"] == "test_split")
    want = [lp / n for lp, n in lm.continuation_logprobs(model, tok, TEST_P, TEST_T, max_tokens=32)]
    assert base["scores"] == pytest.approx(want, abs=1e-5)  # the base arm is the untouched model
    curated = next(r for r in first if r["arm"] == "curated" and r["benchmark"] == "test_split")
    assert curated["scores"][0] > base["scores"][0]  # two steps on the answer raise its likelihood
    done.clear()
    again = evaluate_arms(
        model,
        tok,
        arms,
        pool_prompts=POOL_P,
        pool_targets=POOL_T,
        test_prompts=TEST_P,
        test_targets=TEST_T,
        benchmarks=BENCH,
        plan=plan,
        log=logs.append,
        cache_dir=tmp_path / "cache",
        model_key="tiny",
        on_arm_done=lambda *a: done.append(a),
    )
    assert again == first and sum("from the cache" in m for m in logs) == len(
        arms
    )  # per-item scores come back from the cache
    assert (
        done == [(k, 5, label, True) for k, label in enumerate(labels, 1)]
        and "evaluation arm 3/5 random (seed 0): from the cache" in logs
    )
    fresh = evaluate_arms(
        model,
        tok,
        arms[:2],
        pool_prompts=POOL_P,
        pool_targets=POOL_T,
        test_prompts=TEST_P,
        test_targets=TEST_T,
        benchmarks=BENCH,
        plan=plan,
    )
    assert [v for r in fresh for v in r["scores"]] == pytest.approx(
        [v for r in first[:4] for v in r["scores"]], abs=1e-6
    )  # same plan + seed = same result
    fixed = evaluate_arms(
        model,
        tok,
        arms[1:2],
        pool_prompts=POOL_P,
        pool_targets=POOL_T,
        test_prompts=TEST_P,
        test_targets=TEST_T,
        benchmarks=BENCH,
        plan=TrainingPlan(steps=3, lr=1e-2, rank=2, alpha=4, batch_size=2, max_tokens=32),
        log=logs.append,
        cache_dir=tmp_path / "cache",
        model_key="tiny",
    )
    assert fixed[0]["steps"] == 3 and not np.isclose(
        fixed[0]["value"], curated["value"]
    )  # another budget is another cache entry
    same_steps = evaluate_arms(
        model,
        tok,
        arms[1:2],
        pool_prompts=POOL_P,
        pool_targets=POOL_T,
        test_prompts=TEST_P,
        test_targets=TEST_T,
        benchmarks=BENCH,
        plan=FinetuneBudget(steps=2, lr=1e-2, rank=2, alpha=4, batch_size=2, max_tokens=32),
        log=logs.append,
        cache_dir=tmp_path / "cache",
        model_key="tiny",
    )
    assert same_steps == [r for r in first if r["arm"] == "curated"] and logs[-1].endswith(
        "from the cache"
    )  # the same resolved budget: the same entry


def test_arm_progress_becomes_an_observation_of_evaluation_metrics():
    """assets/evaluate.py's on_arm_done inside an asset under dg.materialize: one AssetObservation per arm."""
    import dagster as dg

    from shed_pipeline.assets.evaluate import arm_observer

    @dg.asset(name="evaluation_metrics")
    def evaluation_metrics(context: dg.AssetExecutionContext) -> None:
        on_arm_done = arm_observer(context)
        on_arm_done(1, 3, "base", True)
        on_arm_done(2, 3, "random (seed 0)", False)

    with dg.instance_for_test() as instance:
        result = dg.materialize([evaluation_metrics], instance=instance)
    assert result.success
    observed = [
        {k: v.value for k, v in o.metadata.items()} for o in result.asset_observations_for_node("evaluation_metrics")
    ]
    assert observed == [
        {"arms_done": 1, "arms_total": 3, "arm": "base", "cached": True},
        {"arms_done": 2, "arms_total": 3, "arm": "random (seed 0)", "cached": False},
    ]
    assert all(
        o.asset_key == dg.AssetKey("evaluation_metrics")
        for o in result.asset_observations_for_node("evaluation_metrics")
    )
