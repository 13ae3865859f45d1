"""The evaluation's packed scoring against plain forward passes, on the tiny Llama."""

import numpy as np

from shed_pipeline.core import lm
from shed_pipeline.core.evaluation import ChoiceItem
from shed_pipeline.core.lm import scoring
from shed_pipeline_tests.tiny_lm import build_tiny_lm

QUIZ = [
    ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
    ChoiceItem("what colour sky", ("green", "blue"), 1),
]


def test_scoring_matches_one_sequence_per_pair(tmp_path):
    """`scoring` (packed choices, token-budget batches, head at scored positions only) against
    lm.continuation_logprobs, one (prompt, continuation) at a time: the brute-force oracle."""
    model, tok = lm.load_lm(build_tiny_lm(tmp_path / "tiny"))
    prompts = ["the capital of france is", "a b c d e f g a b c", "what"]
    conts = ["paris berlin", "d", "colour sky blue green"]
    want = [
        lm.continuation_logprobs(model, tok, [p], [c], batch_size=1)[0] for p, c in zip(prompts, conts, strict=True)
    ]
    for budget in (1, 8, 4096):  # one row per batch, a few, all in one
        got = scoring.continuation_logprobs(model, tok, prompts, conts, max_tokens=256, token_budget=budget)
        assert [n for _, n in got] == [n for _, n in want] and np.allclose(
            [v for v, _ in got], [v for v, _ in want], atol=1e-5
        )
    cut = scoring.continuation_logprobs(model, tok, prompts, conts, max_tokens=5)  # the prompt loses its start
    assert np.allclose(
        [v for v, _ in cut],
        [v for v, _ in lm.continuation_logprobs(model, tok, prompts, conts, max_tokens=5)],
        atol=1e-5,
    )
    items = QUIZ + [ChoiceItem("a b c d e f", ("g", "a b c d e f g a b", "d"), 2)]
    for max_tokens in (256, 9):  # 9: the long choice cuts the third item's prompt: one sequence per choice
        means = scoring.choice_means(model, tok, items, max_tokens=max_tokens)
        for it, row in zip(items, means, strict=True):
            pairs = lm.continuation_logprobs(
                model, tok, [it.prompt] * len(it.choices), list(it.choices), max_tokens=max_tokens
            )
            assert np.allclose(row, [v / n for v, n in pairs], atol=1e-5)
        assert [scoring.pick(m) for m in means] == lm.choose_many(model, tok, items, max_tokens=max_tokens)
    # Prompts that share a prefix (a system turn): the prefix's keys and values computed once, reused by every batch.
    shared = ["a b c d e f the capital of france is", "a b c d e f what colour", "a b c d e f g"]
    assert scoring.shared_prefix([scoring.Tree(tuple(tok(p)["input_ids"]), ((1,),)) for p in shared]) == tuple(
        tok("a b c d e f")["input_ids"]
    )
    for budget in (1, 4096):
        got = scoring.continuation_logprobs(model, tok, shared, conts, max_tokens=256, token_budget=budget)
        assert np.allclose(
            [v for v, _ in got], [v for v, _ in lm.continuation_logprobs(model, tok, shared, conts)], atol=1e-5
        )
    items = [ChoiceItem(p, ("paris", "blue green", "d"), 0) for p in shared]
    want = [[v / n for v, n in lm.continuation_logprobs(model, tok, [it.prompt] * 3, list(it.choices))] for it in items]
    assert np.allclose(scoring.choice_means(model, tok, items, max_tokens=256), want, atol=1e-5)
