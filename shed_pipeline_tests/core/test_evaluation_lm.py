"""The LM evaluation arms on a tiny Llama: plan, run, cache, summary and verdict."""

import numpy as np
import pytest

from shed_pipeline.core import lm
from shed_pipeline.core.benchmarks import ChoiceItem
from shed_pipeline.core.evaluation_lm import FinetuneBudget, evaluate_arms, plan_arms, steps_for_epochs, summarize, verdict
from shed_pipeline_tests.tiny_lm import build_tiny_lm


def test_plan_arms_draws_same_size_random_subsets_per_seed():
    arms = plan_arms(50, [3, 1, 4], [7, 8, 9], include_full_pool=True)
    assert [a.name for a in arms] == ["base", "curated", "random", "random", "random", "full_pool"]
    assert arms[0].rows == () and arms[1].rows == (3, 1, 4) and arms[-1].rows == tuple(range(50))
    rand = arms[2:5]
    assert all(len(a.rows) == 3 and len(set(a.rows)) == 3 for a in rand) and [a.replicate for a in rand] == [7, 8, 9]
    assert plan_arms(50, [3, 1, 4], [7], False)[2].rows == rand[0].rows  # a seed always draws the same rows
    with pytest.raises(ValueError, match="empty"):
        plan_arms(50, [], [1], False)
    assert steps_for_epochs(3, 100, 16) == 19 and steps_for_epochs(0.01, 10, 8) == 1


def test_summary_and_verdict_arithmetic():
    recs = [{"arm": a, "replicate": r, "subset_size": 2, "benchmark": "b", "metric": "accuracy", "value": v} for a, r, v in [("curated", 0, 0.6), ("random", 1, 0.4), ("random", 2, 0.6), ("full_pool", 0, 0.55)]]
    summary = summarize(recs)
    rnd = next(s for s in summary if s["arm"] == "random")
    assert rnd["mean"] == pytest.approx(0.5) and rnd["std"] == pytest.approx(0.1 * 2**0.5) and rnd["n"] == 2  # sample std
    v = verdict(summary)["b"]
    assert v["curated_minus_random"] == pytest.approx(0.1) and v["at_or_above_random"]
    assert v["curated_minus_full_pool"] == pytest.approx(0.05) and v["within_noise_of_full_pool"]  # |0.05| <= 2 * 0.141


def test_arms_run_with_one_budget_are_deterministic_and_cached(tmp_path):
    model, tok = lm.load_lm(build_tiny_lm(tmp_path / "tiny"))
    pool_p = ["the capital of france is", "what colour sky", "a b c", "d e f"]
    pool_t = ["paris", "blue", "d e f", "g"]
    bench = {"quiz": [ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0), ChoiceItem("what colour sky", ("green", "blue"), 1)]}
    arms = plan_arms(4, [0, 1], [0, 1], include_full_pool=True)
    budget = FinetuneBudget(steps=3, lr=1e-2, rank=2, alpha=4, batch_size=2, max_tokens=32)
    logs = []
    first = evaluate_arms(model, tok, arms, pool_p, pool_t, ["the capital of france is"], ["paris"], bench, budget, logs.append, tmp_path / "cache", "tiny")
    assert len(first) == len(arms) * 2 and {r["benchmark"] for r in first} == {"test_split", "quiz"}
    base = next(r["value"] for r in first if r["arm"] == "base" and r["benchmark"] == "test_split")
    want = lm.continuation_logprobs(model, tok, ["the capital of france is"], ["paris"])[0]
    assert base == pytest.approx(want[0] / want[1], abs=1e-5)  # the base arm is the untouched model
    curated = next(r["value"] for r in first if r["arm"] == "curated" and r["benchmark"] == "test_split")
    assert curated > base  # three steps on the answer raise its likelihood
    assert all(0 <= r["value"] <= 1 for r in first if r["metric"] == "accuracy")
    again = evaluate_arms(model, tok, arms, pool_p, pool_t, ["the capital of france is"], ["paris"], bench, budget, logs.append, tmp_path / "cache", "tiny")
    assert again == first and sum("from the cache" in m for m in logs) == len(arms)
    fresh = evaluate_arms(model, tok, arms[:2], pool_p, pool_t, ["the capital of france is"], ["paris"], bench, budget)
    assert [r["value"] for r in fresh] == pytest.approx([r["value"] for r in first[:4]], abs=1e-6)  # same budget + seed = same result
    other = evaluate_arms(model, tok, arms[1:2], pool_p, pool_t, ["the capital of france is"], ["paris"], bench, FinetuneBudget(steps=4, lr=1e-2, rank=2, alpha=4, batch_size=2, max_tokens=32), logs.append, tmp_path / "cache", "tiny")
    assert not np.isclose(other[0]["value"], curated)  # another budget is another cache entry
