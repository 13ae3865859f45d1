"""Log-likelihoods, choices and hidden-state features from batched forward passes, on the tiny Llama."""

import numpy as np
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline.core.progress import Progress


class Ticks:
    """A clock that moves one second per reading: progress lines come out exact."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1.0
        return self.t


def one_at_a_time(model, tok, prompt, continuation):
    """Oracle: no batching, no padding."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(continuation, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([p + c])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return sum(float(logp[len(p) - 1 + j, c[j]]) for j in range(len(c))), len(c)


def test_batched_log_likelihoods_equal_one_at_a_time(tiny):
    model, tok = tiny
    prompts = ["the capital of france is", "what colour", "a b c d e f g the sky is", "what"]
    conts = ["paris", "is the sky blue", "green", "a b"]
    got = lm.continuation_logprobs(model, tok, prompts, conts, batch_size=3)
    for (lp, n), p, c in zip(got, prompts, conts, strict=True):
        want_lp, want_n = one_at_a_time(model, tok, p, c)
        assert n == want_n and lp == pytest.approx(want_lp, abs=1e-4)
    single = lm.continuation_logprobs(model, tok, prompts, conts, batch_size=1)
    assert [n for _, n in single] == [n for _, n in got] and [lp for lp, _ in single] == pytest.approx(
        [lp for lp, _ in got], abs=1e-4
    )


def test_choose_takes_the_best_mean_log_likelihood(tiny):
    model, tok = tiny
    choices = ["paris", "berlin", "madrid a b"]
    scores = [one_at_a_time(model, tok, "the capital of france is", c) for c in choices]
    assert lm.choose(model, tok, "the capital of france is", choices) == int(np.argmax([lp / n for lp, n in scores]))


def test_bad_input_gets_a_clear_error(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="differ in length"):
        lm.continuation_logprobs(model, tok, ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="empty prompt"):
        lm.continuation_logprobs(model, tok, [""], ["b"])


def test_penultimate_features_are_the_mean_pooled_hidden_states_whatever_the_batching(tiny):
    model, tok = tiny
    prompts, targets = ["the capital of france is", "what colour", "a b c"], ["paris", "is the sky blue", "d e f g"]
    xs, ys = lm.penultimate_features(model, tok, prompts, targets, batch_size=2)
    assert xs.shape == ys.shape == (3, model.config.hidden_size) and xs.dtype == np.float32
    for i, (p, t) in enumerate(zip(prompts, targets, strict=True)):  # oracle: one unpadded sequence
        p_ids = tok(p, add_special_tokens=False)["input_ids"]
        t_ids = tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            h = model(input_ids=torch.tensor([p_ids + t_ids]), output_hidden_states=True).hidden_states[-2][0].numpy()
        np.testing.assert_allclose(xs[i], h[: len(p_ids)].mean(0), atol=1e-5)
        np.testing.assert_allclose(ys[i], h[len(p_ids) :].mean(0), atol=1e-5)


def test_choose_many_equals_choosing_item_by_item(tiny):
    from shed_pipeline.core.evaluation import ChoiceItem

    model, tok = tiny
    items = [
        ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
        ChoiceItem("what colour", ("blue", "green"), 1),
        ChoiceItem("a b", ("c d e f g", "c"), 0),
    ]
    assert lm.choose_many(model, tok, items, batch_size=2) == [
        lm.choose(model, tok, it.prompt, list(it.choices)) for it in items
    ]
    assert lm.choose_many(model, tok, []) == []


def test_long_steps_report_progress_per_batch_and_per_step(tiny):
    model, tok = tiny
    prompts, targets = ["the capital of france is", "what colour", "a b c"], ["paris", "is the sky blue", "d e f g"]
    lines = []
    xs, ys = lm.penultimate_features(
        model,
        tok,
        prompts,
        targets,
        batch_size=2,
        progress=Progress(3, "probe features", lines.append, every_s=0, clock=Ticks()),
    )
    assert lines == [
        "probe features: 2/3 rows (2.0 rows/s, ~0s left)",
        "probe features: 3/3 rows (1.5 rows/s, done in 2s)",
    ]
    np.testing.assert_array_equal(
        xs, lm.penultimate_features(model, tok, prompts, targets, batch_size=2)[0]
    )  # no progress: same numbers
    lines = []
    lm.continuation_logprobs(
        model,
        tok,
        prompts + ["what"],
        targets + ["a b"],
        batch_size=3,
        progress=Progress(4, "test_split", lines.append, unit="sequences", every_s=0, clock=Ticks()),
    )
    assert [line.split(" (")[0] for line in lines] == ["test_split: 3/4 sequences", "test_split: 4/4 sequences"]
    lines = []
    with lm.lora_finetuned(
        model,
        tok,
        prompts,
        targets,
        steps=3,
        rank=2,
        batch_size=2,
        progress=Progress(3, "LoRA fine-tune", lines.append, unit="steps", every_s=0, clock=Ticks()),
    ):
        pass
    assert [line.split(" (")[0] for line in lines] == [
        "LoRA fine-tune: 1/3 steps",
        "LoRA fine-tune: 2/3 steps",
        "LoRA fine-tune: 3/3 steps",
    ]
    from shed_pipeline.core.evaluation import ChoiceItem

    items = [
        ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
        ChoiceItem("what colour", ("blue", "green"), 1),
    ]
    lines = []
    lm.choice_accuracy(
        model,
        tok,
        items,
        batch_size=8,
        progress=Progress(lm.choice_pairs(items), "quiz", lines.append, unit="sequences"),
    )
    assert len(lines) == 1 and lines[0].startswith("quiz: 5/5 sequences (")  # quick: the end line only
