"""The language-model layer on a tiny Llama built in the test (random weights, offline), and one
slow test on the real SmolLM2-135M-Instruct from the package registry."""

import numpy as np
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline_tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return lm.load_lm(build_tiny_lm(tmp_path_factory.mktemp("tiny_llama")))


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
    assert [n for _, n in single] == [n for _, n in got] and [lp for lp, _ in single] == pytest.approx([lp for lp, _ in got], abs=1e-4)


def test_choose_takes_the_best_mean_log_likelihood(tiny):
    model, tok = tiny
    choices = ["paris", "berlin", "madrid a b"]
    scores = [one_at_a_time(model, tok, "the capital of france is", c) for c in choices]
    assert lm.choose(model, tok, "the capital of france is", choices) == int(np.argmax([lp / n for lp, n in scores]))


def test_bad_input_gets_a_clear_error(tiny, tmp_path):
    model, tok = tiny
    with pytest.raises(ValueError, match="differ in length"):
        lm.continuation_logprobs(model, tok, ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="empty prompt"):
        lm.continuation_logprobs(model, tok, [""], ["b"])
    with pytest.raises(ValueError, match="never fetched from a hub"):
        lm.resolve_lm("some-org/some-model", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        lm.resolve_lm(str(tmp_path / "empty"), tmp_path)


@pytest.mark.slow
def test_real_smollm2_loads_offline_and_knows_a_capital():
    from shed_pipeline.core.natural_instructions import default_cache_dir

    path = lm.resolve_lm(lm.SMOLLM2, default_cache_dir(), log=lambda m: None)
    model, tok = lm.load_lm(path)
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = lm.prompt_text(tok, "What is the capital of France? Answer with one word.")
    assert lm.choose(model, tok, prompt, ["Berlin", "Paris", "Madrid"]) == 1


def test_lora_fine_tune_learns_is_seeded_and_leaves_the_base_untouched(tiny):
    model, tok = tiny
    base = {k: v.clone() for k, v in model.state_dict().items()}
    prompts, targets = ["the capital of france is", "what colour is the sky"], ["paris", "blue"]
    before = lm.continuation_logprobs(model, tok, prompts, targets)
    with lm.lora_finetuned(model, tok, prompts, targets, steps=30, lr=1e-2, rank=4, batch_size=2, seed=3) as tuned:
        after = lm.continuation_logprobs(tuned, tok, prompts, targets)
    with lm.lora_finetuned(model, tok, prompts, targets, steps=30, lr=1e-2, rank=4, batch_size=2, seed=3) as tuned:
        again = lm.continuation_logprobs(tuned, tok, prompts, targets)
    assert all(a > b + 1.0 for (a, _), (b, _) in zip(after, before, strict=True))  # learned the targets
    assert again == after  # same seed, same fine-tune, bit for bit
    state = model.state_dict()
    assert state.keys() == base.keys() and all(torch.equal(state[k], base[k]) for k in base)
    assert lm.continuation_logprobs(model, tok, prompts, targets) == before
    with pytest.raises(ValueError, match="at least one"):
        lm.lora_finetuned(model, tok, [], [], steps=1)


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
    from shed_pipeline.core.benchmarks import ChoiceItem

    model, tok = tiny
    items = [ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0), ChoiceItem("what colour", ("blue", "green"), 1), ChoiceItem("a b", ("c d e f g", "c"), 0)]
    assert lm.choose_many(model, tok, items, batch_size=2) == [lm.choose(model, tok, it.prompt, list(it.choices)) for it in items]
    assert lm.choose_many(model, tok, []) == []
